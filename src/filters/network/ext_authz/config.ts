// Parses envoy.extensions.filters.network.ext_authz.v3.ExtAuthz: the gRPC authorization service a
// connection is checked against (envoy_grpc cluster, timeout, initial metadata), failure_mode_allow,
// the peer details sent, and the stat prefix. What legate does not implement is refused by path.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';
import type { GrpcServiceTarget } from '../../common/ext_authz/grpc-check.ts';
import { checkTransportApi, parseGrpcService, type GrpcService__Output } from '../../common/grpc-service-config.ts';
import type { PeerDetails } from '../../common/ext_authz/check-request.ts';

export const NETWORK_EXT_AUTHZ_NAME = 'envoy.filters.network.ext_authz';
export const NETWORK_EXT_AUTHZ_TYPE = 'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';

/** The decoded message (proto-loader object form; src/generated has no type for this proto). */
interface ExtAuthz__Output {
  readonly stat_prefix: string;
  readonly grpc_service: GrpcService__Output | null;
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
  if (!m.grpc_service) errors.push({ path: joinPath(p, 'grpc_service'), reason: 'value is required' });
  const grpc = m.grpc_service ? parseGrpcService(m.grpc_service, joinPath(p, 'grpc_service'), ctx, errors) : undefined;
  checkTransportApi(m.transport_api_version, joinPath(p, 'transport_api_version'), errors);
  if (m.filter_enabled_metadata) errors.push({ path: joinPath(p, 'filter_enabled_metadata'), reason: 'filter_enabled_metadata is not supported yet' });
  if (m.bootstrap_metadata_labels_key) errors.push({ path: joinPath(p, 'bootstrap_metadata_labels_key'), reason: 'bootstrap_metadata_labels_key is not supported yet' });
  if (m.send_tls_alert_on_denial) errors.push({ path: joinPath(p, 'send_tls_alert_on_denial'), reason: 'send_tls_alert_on_denial is not supported yet' });
  if (errors.length > 0 || !grpc) return { ok: false, errors };
  return ok(
    Object.freeze({
      ...grpc,
      statPrefix: `ext_authz.${m.stat_prefix}.`,
      failureModeAllow: m.failure_mode_allow,
      includePeerCertificate: m.include_peer_certificate,
      includeTlsSession: m.include_tls_session,
    }),
  );
}
