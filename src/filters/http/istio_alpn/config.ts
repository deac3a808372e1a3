// Parses istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig (Istio's `istio.alpn`): the
// ALPN list to offer upstream for each upstream HTTP protocol (istiod: `istio-http/1.0`,
// `istio-http/1.1`, `istio-h2`, each with `istio`, so the peer sidecar sees mesh mTLS).

import { ok, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export const ISTIO_ALPN_NAME = 'istio.alpn';
export const ISTIO_ALPN_TYPE = 'istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig';

export type AlpnProtocol = 'HTTP10' | 'HTTP11' | 'HTTP2';

/** The decoded message (proto-loader object form; src/config/istio-protos). */
interface FilterConfig__Output {
  readonly alpn_override: ReadonlyArray<{ readonly upstream_protocol: AlpnProtocol; readonly alpn_override: readonly string[] }>;
}

export interface IstioAlpnConfig {
  /** Upstream protocol -> the ALPN list to offer (later entries for a protocol replace earlier ones). */
  readonly overrides: ReadonlyMap<AlpnProtocol, readonly string[]>;
}

export function parseIstioAlpn(message: unknown, _ctx: ParseContext): Result<IstioAlpnConfig> {
  const m = message as FilterConfig__Output;
  const overrides = new Map<AlpnProtocol, readonly string[]>();
  for (const o of m.alpn_override) overrides.set(o.upstream_protocol, [...o.alpn_override]);
  return ok({ overrides });
}
