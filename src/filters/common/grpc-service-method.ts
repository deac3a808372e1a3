// A gRPC request's service and method from its :path (Envoy's Grpc::Common::resolveServiceAndMethod),
// for the filters that count calls per method (grpc_stats, grpc_web).

/** `/service/method`, both non-empty; undefined for any other path. */
export function serviceAndMethod(path: string | undefined): { service: string; method: string } | undefined {
  if (path === undefined || path.charCodeAt(0) !== 47) return undefined;
  const parts = path.split('/').filter((p) => p !== '');
  return parts.length === 2 ? { service: parts[0]!, method: parts[1]! } : undefined;
}
