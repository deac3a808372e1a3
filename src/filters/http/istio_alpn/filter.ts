// Istio's `istio.alpn` HTTP filter: before the router connects, leaves the ALPN list for the
// request's upstream protocol in filter state (`envoy.network.application_protocols`), which the
// router hands to the upstream TLS connection (and its pool key). The upstream protocol is the
// cluster's, or the downstream's for use_downstream_protocol_config (Envoy's upstreamHttpProtocol).

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { routeCluster } from '../route-cluster.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { APPLICATION_PROTOCOLS_KEY } from '../../../proxy/upstream/upstream-tls.ts';
import type { AlpnProtocol, IstioAlpnConfig } from './config.ts';

export class IstioAlpnFactory implements HttpFilterFactory<IstioAlpnConfig> {
  readonly config: IstioAlpnConfig;
  readonly rt: RuntimeContext;

  constructor(config: IstioAlpnConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
  }

  create(_config: IstioAlpnConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new IstioAlpnFilter(this, callbacks);
  }
}

export class IstioAlpnFilter implements HttpFilter {
  readonly #f: IstioAlpnFactory;
  readonly #cb: HttpFilterCallbacks;

  constructor(factory: IstioAlpnFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const info = this.#cb.streamInfo;
    const name = routeCluster(this.#cb, headers);
    const cluster = name === undefined ? undefined : this.#f.rt.clusterManager.get(name);
    if (!cluster) return FilterHeadersStatus.Continue;
    const p = cluster.info.protocol;
    const protocol: AlpnProtocol =
      p === 'http2' || (p === 'downstream' && info.protocol === 'HTTP/2') ? 'HTTP2' : p === 'downstream' && info.protocol === 'HTTP/1.0' ? 'HTTP10' : 'HTTP11';
    const alpn = this.#f.config.overrides.get(protocol);
    if (alpn && alpn.length > 0) (info.filterState ??= new Map()).set(APPLICATION_PROTOCOLS_KEY, alpn);
    return FilterHeadersStatus.Continue;
  }
}
