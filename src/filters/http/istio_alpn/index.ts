// Registers Istio's `istio.alpn` HTTP filter (explicit call from filters/index.ts).

import type { ExtensionRegistry } from '../../registry.ts';
import { ISTIO_ALPN_NAME, ISTIO_ALPN_TYPE, parseIstioAlpn, type IstioAlpnConfig } from './config.ts';
import { IstioAlpnFactory } from './filter.ts';

export { ISTIO_ALPN_NAME, ISTIO_ALPN_TYPE, parseIstioAlpn, type IstioAlpnConfig } from './config.ts';
export { IstioAlpnFactory, IstioAlpnFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<IstioAlpnConfig, IstioAlpnFactory>({
    name: ISTIO_ALPN_NAME,
    protoType: ISTIO_ALPN_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseIstioAlpn,
    factory: (config, ctx) => new IstioAlpnFactory(config, ctx),
  });
}
