// /config_dump in Envoy's shape (envoy.admin.v3.ConfigDump): BootstrapConfigDump,
// ClustersConfigDump (static, dynamic_active, dynamic_warming), EndpointsConfigDump (only with
// ?include_eds), ListenersConfigDump (static, dynamic with active/warming/draining/error states),
// RoutesConfigDump (inline route configs as static, RDS ones as dynamic), SecretsConfigDump. Every
// resource goes through toProto3Json with sensitive fields redacted. `?resource=` returns one
// repeated field across dumps, `?mask=` (a FieldMask: comma-separated dotted paths) keeps only
// those fields of each resource (or of each dump without `resource`), `?name_regex=` filters by name.

import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { toProto3Json } from '../../config/decode.ts';
import type { XdsDumpState } from '../xds/xds-state.ts';
import { inlineRouteConfigs } from '../xds/references.ts';
import type { ConfigDumpOptions } from './source.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
const SENSITIVE = { redact: 'sensitive' } as const;

type Json = Record<string, unknown>;

function typed(typeName: string, msg: unknown): Json {
  return { '@type': `type.googleapis.com/${typeName}`, ...(toProto3Json(typeName, msg, SENSITIVE) as Json) };
}

const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE = 'envoy.config.route.v3.RouteConfiguration';
const CLA = 'envoy.config.endpoint.v3.ClusterLoadAssignment';

export interface ConfigDumpInput {
  readonly bootstrap: Bootstrap__Output;
  /** When the bootstrap was loaded. */
  readonly loadedAt: Date;
  /** Dynamic state; undefined without dynamic_resources. */
  readonly xds: XdsDumpState | undefined;
  /** The SecretsConfigDump, already built. */
  readonly secrets: Json;
}

/** Builds the dump and applies resource/mask/name_regex; undefined when `resource` names nothing (404). */
export function buildConfigDump(d: ConfigDumpInput, opts: ConfigDumpOptions): unknown {
  const b = d.bootstrap;
  const at = d.loadedAt.toISOString();
  const x = d.xds;
  const iso = (t: Date): string => t.toISOString();
  const staticListeners = b.static_resources?.listeners ?? [];
  const configs: Json[] = [
    { '@type': `${ADMIN}BootstrapConfigDump`, bootstrap: toProto3Json('envoy.config.bootstrap.v3.Bootstrap', b, SENSITIVE), last_updated: at },
    {
      '@type': `${ADMIN}ClustersConfigDump`,
      ...(x?.cdsVersion ? { version_info: x.cdsVersion } : {}),
      static_clusters: (b.static_resources?.clusters ?? []).map((c) => ({ cluster: typed(CLUSTER, c), last_updated: at })),
      dynamic_active_clusters: [...(x?.activeClusters.values() ?? [])].map((c) => ({ version_info: c.version, cluster: typed(CLUSTER, c.proto), last_updated: iso(c.lastUpdated) })),
      dynamic_warming_clusters: [...(x?.warmingClusters.values() ?? [])].map((c) => ({ version_info: c.version, cluster: typed(CLUSTER, c.proto), last_updated: iso(c.lastUpdated) })),
    },
  ];
  if (opts.includeEds) {
    configs.push({
      '@type': `${ADMIN}EndpointsConfigDump`,
      static_endpoint_configs: (b.static_resources?.clusters ?? []).flatMap((c) => (c.load_assignment ? [{ endpoint_config: typed(CLA, { ...c.load_assignment, cluster_name: c.load_assignment.cluster_name || c.name }), last_updated: at }] : [])),
      dynamic_endpoint_configs: [...(x?.endpoints.values() ?? [])].map((e) => ({ version_info: e.version, endpoint_config: typed(CLA, e.proto), last_updated: iso(e.lastUpdated) })),
    });
  }
  const names = new Set<string>([...(x?.activeListeners.keys() ?? []), ...(x?.warmingListeners.keys() ?? []), ...(x?.drainingListeners.keys() ?? []), ...(x?.listenerErrors.keys() ?? [])]);
  const state = (l: { version: string; proto: unknown; lastUpdated: Date } | undefined): Json | undefined => (l ? { version_info: l.version, listener: typed(LISTENER, l.proto), last_updated: iso(l.lastUpdated) } : undefined);
  configs.push({
    '@type': `${ADMIN}ListenersConfigDump`,
    ...(x?.ldsVersion ? { version_info: x.ldsVersion } : {}),
    static_listeners: staticListeners.map((l) => ({ listener: typed(LISTENER, l), last_updated: at })),
    dynamic_listeners: [...names].map((name) => {
      const err = x?.listenerErrors.get(name);
      const active = state(x?.activeListeners.get(name));
      const warming = state(x?.warmingListeners.get(name));
      const draining = state(x?.drainingListeners.get(name));
      return {
        name,
        ...(active ? { active_state: active } : {}),
        ...(warming ? { warming_state: warming } : {}),
        ...(draining ? { draining_state: draining } : {}),
        ...(err ? { error_state: { failed_configuration: typed(LISTENER, err.failed), last_update_attempt: iso(err.at), details: err.details } } : {}),
      };
    }),
  });
  const inline = [...staticListeners, ...[...(x?.activeListeners.values() ?? [])].map((l) => l.proto)].flatMap((l) => inlineRouteConfigs(l));
  configs.push({
    '@type': `${ADMIN}RoutesConfigDump`,
    static_route_configs: inline.map((rc) => ({ route_config: typed(ROUTE, rc), last_updated: at })),
    dynamic_route_configs: [...(x?.routes.values() ?? [])].map((r) => ({ version_info: r.version, route_config: typed(ROUTE, r.proto), last_updated: iso(r.lastUpdated) })),
  });
  configs.push(d.secrets);

  const mask = opts.mask ? opts.mask.split(',').map((p) => p.trim()).filter(Boolean) : undefined;
  if (!opts.resource) {
    if (!mask && !opts.nameRegex) return { configs };
    return { configs: configs.map((c) => (mask ? { '@type': c['@type'], ...applyMask(c, mask) } : c)).map((c) => (opts.nameRegex ? filterNames(c, opts.nameRegex) : c)) };
  }
  const resource = opts.resource;
  if (!configs.some((c) => resource in c)) return undefined;
  let items = configs.flatMap((c) => (Array.isArray(c[resource]) ? (c[resource] as Json[]).map((i) => withType(c['@type'] as string, resource, i)) : []));
  if (opts.nameRegex) items = items.filter((i) => matchesName(i, opts.nameRegex!));
  if (mask) items = items.map((i) => ({ '@type': i['@type'], ...applyMask(i, mask) }));
  return { configs: items };
}

/** With ?resource=, each item is printed as its own message type (Envoy: e.g. ClustersConfigDump.DynamicCluster). */
function withType(dumpType: string, field: string, item: Json): Json {
  const sub: Record<string, string> = {
    static_clusters: 'ClustersConfigDump.StaticCluster',
    dynamic_active_clusters: 'ClustersConfigDump.DynamicCluster',
    dynamic_warming_clusters: 'ClustersConfigDump.DynamicCluster',
    static_listeners: 'ListenersConfigDump.StaticListener',
    dynamic_listeners: 'ListenersConfigDump.DynamicListener',
    static_route_configs: 'RoutesConfigDump.StaticRouteConfig',
    dynamic_route_configs: 'RoutesConfigDump.DynamicRouteConfig',
    static_endpoint_configs: 'EndpointsConfigDump.StaticEndpointConfig',
    dynamic_endpoint_configs: 'EndpointsConfigDump.DynamicEndpointConfig',
    static_secrets: 'SecretsConfigDump.StaticSecret',
    dynamic_active_secrets: 'SecretsConfigDump.DynamicSecret',
    dynamic_warming_secrets: 'SecretsConfigDump.DynamicSecret',
  };
  const t = sub[field];
  return t ? { '@type': `${ADMIN}${t}`, ...item } : { '@type': dumpType, ...item };
}

/** A dump item's resource name: its `name`, or the name inside its cluster/listener/route_config/secret/endpoint_config. */
function itemName(i: Json): string | undefined {
  if (typeof i['name'] === 'string') return i['name'];
  for (const k of ['cluster', 'listener', 'route_config', 'secret']) {
    const v = i[k] as Json | undefined;
    if (v && typeof v['name'] === 'string') return v['name'];
  }
  const e = i['endpoint_config'] as Json | undefined;
  return e && typeof e['cluster_name'] === 'string' ? e['cluster_name'] : undefined;
}

function matchesName(i: Json, re: RegExp): boolean {
  const n = itemName(i);
  return n !== undefined && re.test(n);
}

function filterNames(dump: Json, re: RegExp): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(dump)) out[k] = Array.isArray(v) && k !== 'configs' ? (v as Json[]).filter((i) => typeof i !== 'object' || matchesName(i, re)) : v;
  return out;
}

/** FieldMask: keeps the listed dotted paths; a repeated field on the way applies the rest to each element. */
export function applyMask(obj: Json, paths: readonly string[]): Json {
  const tree = new Map<string, string[]>();
  for (const p of paths) {
    const [head, ...rest] = p.split('.');
    if (!head) continue;
    const sub = tree.get(head) ?? [];
    if (rest.length === 0) sub.push('');
    else sub.push(rest.join('.'));
    tree.set(head, sub);
  }
  const out: Json = {};
  for (const [k, subs] of tree) {
    if (!(k in obj)) continue;
    const v = obj[k];
    if (subs.includes('') || v === null || typeof v !== 'object') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.map((e) => (e && typeof e === 'object' ? applyMask(e as Json, subs) : e));
    else out[k] = applyMask(v as Json, subs);
  }
  return out;
}
