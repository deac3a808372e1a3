// What a Listener or RouteConfiguration refers to, read from the decoded protos: the RDS route
// configurations its HTTP connection managers name (with the HCM's stat_prefix, for
// `http.<stat_prefix>.rds.<name>.*`), and the cluster names its tcp_proxy filters and routes
// (inline or RDS) can send to. The xDS manager keeps a cluster removed by CDS while an active
// listener still refers to it. `cluster_header` routes name no cluster in advance.

import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { FilterChain__Output } from '../../generated/envoy/config/listener/v3/FilterChain.ts';
import type { ConfigSource__Output } from '../../generated/envoy/config/core/v3/ConfigSource.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { HttpConnectionManager__Output } from '../../generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import type { TcpProxy__Output } from '../../generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
import { unpackAny } from '../../config/decode.ts';
import { joinPath } from '../../config/result.ts';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export interface RdsUse {
  readonly routeConfigName: string;
  readonly statPrefix: string;
  readonly configSource: ConfigSource__Output;
  /** Field path of the `rds` message inside the listener. */
  readonly path: string;
}

export interface ListenerRefs {
  readonly rds: readonly RdsUse[];
  /** Clusters named by tcp_proxy filters and inline route configurations. */
  readonly clusters: ReadonlySet<string>;
}

/** The references of one listener (`path` names it). Undecodable filters are skipped (parseListener reports them). */
export function listenerRefs(l: Listener__Output, path: string): ListenerRefs {
  const rds: RdsUse[] = [];
  const clusters = new Set<string>();
  const chain = (fc: FilterChain__Output, p: string): void => {
    fc.filters.forEach((f, i) => {
      if (!f.typed_config) return;
      const fp = joinPath(p, `filters[${i}].typed_config`);
      const u = unpackAny<unknown>(f.typed_config, fp);
      if (!u.ok) return;
      if (u.value.typeName === HCM) {
        const h = u.value.message as HttpConnectionManager__Output;
        if (h.rds) rds.push({ routeConfigName: h.rds.route_config_name, statPrefix: h.stat_prefix, configSource: h.rds.config_source!, path: joinPath(fp, 'rds') });
        if (h.route_config) for (const c of routeClusters(h.route_config)) clusters.add(c);
      } else if (u.value.typeName === TCP_PROXY) {
        const t = u.value.message as TcpProxy__Output;
        if (t.cluster) clusters.add(t.cluster);
        for (const w of t.weighted_clusters?.clusters ?? []) clusters.add(w.name);
      }
    });
  };
  l.filter_chains.forEach((fc, i) => chain(fc, joinPath(path, `filter_chains[${i}]`)));
  if (l.default_filter_chain) chain(l.default_filter_chain, joinPath(path, 'default_filter_chain'));
  return { rds, clusters };
}

/** Inline route configurations of a listener's HCMs (for RoutesConfigDump.static_route_configs). */
export function inlineRouteConfigs(l: Listener__Output): RouteConfiguration__Output[] {
  const out: RouteConfiguration__Output[] = [];
  for (const fc of [...l.filter_chains, ...(l.default_filter_chain ? [l.default_filter_chain] : [])]) {
    for (const f of fc.filters) {
      if (!f.typed_config) continue;
      const u = unpackAny<unknown>(f.typed_config, '');
      if (u.ok && u.value.typeName === HCM) {
        const h = u.value.message as HttpConnectionManager__Output;
        if (h.route_config) out.push(h.route_config);
      }
    }
  }
  return out;
}

/** Cluster names a RouteConfiguration's routes send (or mirror) to. */
export function routeClusters(rc: RouteConfiguration__Output): Set<string> {
  const out = new Set<string>();
  for (const vh of rc.virtual_hosts) {
    for (const r of vh.routes) {
      const a = r.route;
      if (!a) continue;
      if (a.cluster) out.add(a.cluster);
      for (const w of a.weighted_clusters?.clusters ?? []) if (w.name) out.add(w.name);
      for (const m of a.request_mirror_policies) if (m.cluster) out.add(m.cluster);
    }
  }
  return out;
}
