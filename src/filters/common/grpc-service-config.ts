// A GrpcService with an envoy_grpc target, as the ext_authz and rate limit filters configure one (its
// cluster must exist when the bootstrap names its clusters), and transport_api_version V3.

import { joinPath, type ConfigError } from '../../config/result.ts';
import { durationMs } from '../../config/values.ts';
import type { ParseContext } from '../registry.ts';
import type { Duration__Output } from '../../generated/google/protobuf/Duration.ts';
import type { GrpcServiceTarget } from './grpc-unary.ts';

/** config.core.v3.GrpcService (proto-loader object form). */
export interface GrpcService__Output {
  readonly envoy_grpc?: { readonly cluster_name: string; readonly authority: string } | null;
  readonly google_grpc?: unknown;
  readonly target_specifier?: 'envoy_grpc' | 'google_grpc';
  readonly timeout: Duration__Output | null;
  readonly initial_metadata: ReadonlyArray<{ readonly key: string; readonly value: string }>;
}

/** Envoy's default Check timeout. */
const DEFAULT_TIMEOUT_MS = 200;

/** `g` at `path` (...grpc_service) as a call target; problems go to `errors`. */
export function parseGrpcService(g: GrpcService__Output, path: string, ctx: ParseContext, errors: ConfigError[]): GrpcServiceTarget {
  if (g.target_specifier === 'google_grpc') errors.push({ path: joinPath(path, 'google_grpc'), reason: 'google_grpc is not supported; use envoy_grpc' });
  const cluster = g.envoy_grpc?.cluster_name ?? '';
  const cpath = joinPath(path, 'envoy_grpc.cluster_name');
  if (g.target_specifier !== 'google_grpc' && !cluster) errors.push({ path: cpath, reason: 'value length must be at least 1 characters' });
  if (cluster && ctx.clusterNames && !ctx.clusterNames.has(cluster)) errors.push({ path: cpath, reason: `unknown cluster '${cluster}'` });
  return {
    cluster,
    authority: g.envoy_grpc?.authority ?? '',
    timeoutMs: durationMs(g.timeout, DEFAULT_TIMEOUT_MS),
    initialMetadata: Object.freeze(g.initial_metadata.map((h) => Object.freeze([h.key.toLowerCase(), h.value] as const))),
  };
}

/** transport_api_version must be V3 (Envoy no longer speaks the others). */
export function checkTransportApi(v: string | number, path: string, errors: ConfigError[]): void {
  const api = String(v);
  if (api !== 'V3' && api !== '2') errors.push({ path, reason: `only V3 is supported, not ${api}` });
}
