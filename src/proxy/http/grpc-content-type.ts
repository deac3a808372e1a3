// Envoy's Grpc::Common::hasGrpcContentType: `application/grpc`, optionally followed by `+proto`,
// `+json`... or `;` parameters. `application/grpc-web` is not gRPC (its filter translates it first).

export function isGrpcContentType(ct: string | undefined): boolean {
  if (ct === undefined || !ct.startsWith('application/grpc')) return false;
  const next = ct.charCodeAt(16);
  return ct.length === 16 || next === 43 /* + */ || next === 59; /* ; */
}
