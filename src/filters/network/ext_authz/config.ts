// Parses envoy.extensions.filters.network.ext_authz.v3.ExtAuthz: the gRPC authorization service a
// connection is checked against (envoy_grpc cluster, timeout, initial metadata), failure_mode_allow,
// the peer details sent, and the stat prefix. What legate does not implement is refused by path.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import type { ParseContext } from '../../registry.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';
import type { GrpcServiceTarget } from '../../common/ext_authz/grpc-check.ts';
import type { PeerDetails } from '../../common/ext_authz/check-request.ts';

export const NETWORK_EXT_AUTHZ_NAME = 'envoy.filters.network.ext_authz';
export const NETWORK_EXT_AUTHZ_TYPE = 'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';

/** The decoded message (proto-loader object form; src/generated has no type for this proto). */
interface ExtAuthz__Output {
  readonly stat_prefix: string;
  readonly grpc_service: {
    readonly envoy_grpc?: { readonly cluster_name: string; readonly authority: string } | null;
    readonly target_specifier?: 'envoy_grpc' | 'google_grpc';
    readonly timeout: Duration__Output | null;
    readonly initial_metadata: ReadonlyArray<{ readonly key: string; readonly value: string }>;
  } | null;
  readonly failure_mode_allow: boolean;
  readonly include_peer_certificate: boolean;
  readonly include_tls_session: boolean;
  readonly transport_api_version: string | number;
  readonly filter_enabled_metadata: unknown;
  readonly bootstrap_metadata_labels_key: string;
  readonly send_tls_alert_on_denial: boolean;
}

export interface NetworkExtAuthzConfig extends GrpcServiceTarget, PeerDetails {
  /** `ext_authz.<stat_prefix>.` */
  readonly statPrefix: string;
  readonly failureModeAllow: boolean;
}

export function parseNetworkExtAuthz(message: unknown, ctx: ParseContext): Result<NetworkExtAuthzConfig> {
  const m = message as ExtAuthz__Output;
  const p = ctx.path;
  const errors: ConfigError[] = [];
  if (!m.stat_prefix) errors.push({ path: joinPath(p, 'stat_prefix'), reason: 'value length must be at least 1 characters' });
  const g = m.grpc_service;
  if (!g) errors.push({ path: joinPath(p, 'grpc_service'), reason: 'value is required' });
  else if (g.target_specifier === 'google_grpc') errors.push({ path: joinPath(p, 'grpc_service.google_grpc'), reason: 'google_grpc is not supported; use envoy_grpc' });
  const cluster = g?.envoy_grpc?.cluster_name ?? '';
  if (g && g.target_specifier !== 'google_grpc' && !cluster) errors.push({ path: joinPath(p, 'grpc_service.envoy_grpc.cluster_name'), reason: 'value length must be at least 1 characters' });
  if (cluster && ctx.clusterNames && !ctx.clusterNames.has(cluster)) errors.push({ path: joinPath(p, 'grpc_service.envoy_grpc.cluster_name'), reason: `unknown cluster '${cluster}'` });
  const api = String(m.transport_api_version);
  if (api !== 'V3' && api !== '2') errors.push({ path: joinPath(p, 'transport_api_version'), reason: `only V3 is supported, not ${api}` });
  if (m.filter_enabled_metadata) errors.push({ path: joinPath(p, 'filter_enabled_metadata'), reason: 'filter_enabled_metadata is not supported yet' });
  if (m.bootstrap_metadata_labels_key) errors.push({ path: joinPath(p, 'bootstrap_metadata_labels_key'), reason: 'bootstrap_metadata_labels_key is not supported yet' });
  if (m.send_tls_alert_on_denial) errors.push({ path: joinPath(p, 'send_tls_alert_on_denial'), reason: 'send_tls_alert_on_denial is not supported yet' });
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      statPrefix: `ext_authz.${m.stat_prefix}.`,
      cluster,
      authority: g?.envoy_grpc?.authority ?? '',
      timeoutMs: durationMs(g?.timeout, 200),
      initialMetadata: Object.freeze((g?.initial_metadata ?? []).map((h) => Object.freeze([h.key.toLowerCase(), h.value] as const))),
      failureModeAllow: m.failure_mode_allow,
      includePeerCertificate: m.include_peer_certificate,
      includeTlsSession: m.include_tls_session,
    }),
  );
}
