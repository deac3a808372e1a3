// Registers Istio's `istio_authn` network filter (io.istio.network.authn.Config, no fields). In
// Istio it copies the connection's peer and local SPIFFE principals (the first spiffe:// URI SANs)
// into filter state for istio.stats; legate's istio.stats reads the same principals from the TLS
// session itself (Istio's own fallback when this filter is absent), so on a legate listener the
// filter has nothing left to do and passes the connection on unchanged.

import type { ExtensionRegistry } from '../../registry.ts';
import { ok } from '../../../config/result.ts';
import type { NetworkFilterFactory } from '../filter.ts';

export const ISTIO_AUTHN_NAME = 'istio_authn';
export const ISTIO_AUTHN_TYPE = 'io.istio.network.authn.Config';

export function register(registry: ExtensionRegistry): void {
  registry.register<null, NetworkFilterFactory<null>>({
    name: ISTIO_AUTHN_NAME,
    protoType: ISTIO_AUTHN_TYPE,
    category: 'network',
    status: 'stable',
    securityPosture: 'unknown',
    parse: () => ok(null),
    factory: () => ({}),
  });
}
