// The grpc-timeout request header (gRPC over HTTP/2: up to 8 digits and a unit), read by the
// connection manager (route max_stream_duration) and the router (max_grpc_timeout).

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout: 200m` -> 200 (ms); undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v || v.length < 2 || v.length > 9) return undefined;
  const unit = GRPC_UNIT_MS[v[v.length - 1]!];
  const digits = v.slice(0, -1);
  if (unit === undefined || !/^\d+$/.test(digits)) return undefined;
  return Math.ceil(Number(digits) * unit);
}

/** Milliseconds -> a grpc-timeout value (`1234m`). */
export function formatGrpcTimeout(ms: number): string {
  return ms < 1e8 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`;
}
