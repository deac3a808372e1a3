// Implements the admin API's view (AdminSource) of the running Server: merged stats, cluster and
// listener status gathered from the workers (dynamic listeners and clusters from the xDS manager),
// config dumps in proto3 JSON (admin/config-dump.ts), lifecycle actions.

import { setHealthCheckFailed } from './server-health.ts';
import type { Server } from './server.ts';
import { VERSION } from './version.ts';
import type { AdminSource, ClusterStatus, ConfigDumpOptions, HealthFlag, ListenerStatus, ServerInfo } from './admin/source.ts';
import { startAdmin, type AdminServer } from './admin/server.ts';
import type { SocketAddr } from './listener/listener-config.ts';
import { toProto3Json } from '../config/decode.ts';
import type { ClusterStatus as WorkerClusterStatus } from './worker/messages.ts';
import { certificatesJson } from './admin/certs.ts';
import { secretsConfigDump } from './admin/secrets-dump.ts';
import { buildConfigDump } from './admin/config-dump.ts';
import type { DownstreamTlsConfig, UpstreamTlsConfig } from './tls/transport-sockets.ts';


export async function startAdminFor(server: Server, address: SocketAddr): Promise<AdminServer> {
  // Each worker's view of its clusters, asked when /clusters is (worker 0's, with every worker's
  // ORIGINAL_DST hosts, which each worker makes for its own connections).
  const workerClusters = async (): Promise<readonly WorkerClusterStatus[]> => {
    const replies = await server.workers.ask({ type: 'clusters' });
    return withOriginalDstHosts(replies[0]?.clusters ?? [], replies.slice(1).flatMap((r) => r.clusters ?? []));
  };

  const runtimeStats = runtimeStatsUpdater(server);
  runtimeStats();
  const source: AdminSource = {
    stats: () => {
      runtimeStats();
      return server.statsSnapshot();
    },
    serverInfo: (): ServerInfo => {
      const uptime = Math.floor((Date.now() - server.startTime) / 1000);
      const o = server.options;
      return {
        version: `legate/${VERSION}/Clean/RELEASE/Node.js-${process.version}`,
        state: server.state,
        hotRestartVersion: 'disabled',
        uptimeCurrentEpochS: uptime,
        uptimeAllEpochsS: uptime,
        commandLineOptions: {
          base_id: String(o.baseId),
          concurrency: o.concurrency,
          config_path: o.configPath ?? '',
          config_yaml: o.configYaml ?? '',
          allow_unknown_static_fields: o.allowUnknownStaticFields,
          log_level: o.logLevel,
          component_log_level: o.componentLogLevels.map(([c, l]) => `${c}:${l}`).join(','),
          local_address_ip_version: o.localAddressIpVersion === 'v4' ? 'v4' : 'v6',
          mode: o.mode === 'serve' ? 'Serve' : o.mode === 'validate' ? 'Validate' : 'InitOnly',
          service_cluster: o.serviceCluster ?? '',
          service_node: o.serviceNode ?? '',
          service_zone: o.serviceZone ?? '',
          drain_time: `${o.drainTimeS}s`,
          drain_strategy: o.drainStrategy === 'gradual' ? 'Gradual' : 'Immediate',
          parent_shutdown_time: `${o.parentShutdownTimeS}s`,
          file_flush_interval: `${o.fileFlushIntervalMsec / 1000}s`,
          disable_hot_restart: true,
        },
        node: (server.config.bootstrap.node ? toProto3Json('envoy.config.core.v3.Node', server.config.bootstrap.node) : {}) as Record<string, unknown>,
      };
    },
    clusters: async (): Promise<ClusterStatus[]> =>
      (await workerClusters()).map((c) => ({
        name: c.name,
        addedViaApi: server.xds?.dumpState().activeClusters.has(c.name) ?? false,
        ...(c.circuitBreakers ? { circuitBreakers: { default: c.circuitBreakers.DEFAULT, high: c.circuitBreakers.HIGH } } : {}),
        hosts: c.hosts.map((h) => ({
          address: h.address,
          port: h.port,
          ...(h.hostname ? { hostname: h.hostname } : {}),
          weight: h.weight,
          priority: h.priority,
          locality: { region: h.region, zone: h.zone, subZone: h.subZone },
          health: h.health as 'healthy' | 'unhealthy' | 'degraded',
          ...(h.healthFlags ? { healthFlags: h.healthFlags as readonly HealthFlag[] } : {}),
        })),
      })),
    listeners: (): ListenerStatus[] =>
      [...server.config.listeners, ...(server.xds?.activeListenerConfigs() ?? [])].map((l) => ({ name: l.name, address: l.address.host, port: server.listenerPorts[l.name] ?? l.address.port })),
    configDump: (opts: ConfigDumpOptions) => configDump(server, opts),
    runtime: () => server.runtime.layers(),
    runtimeModify: async (values) => {
      // Throws NO_ADMIN_LAYER before any worker is asked when there is no admin layer.
      await server.setRuntime(values);
      runtimeStats();
    },
    certs: () => certificatesJson(tlsContexts(server), server.secrets.store),
    healthcheck: (fail) => {
      server.healthcheckFailed = fail;
      setHealthCheckFailed(server.shared, fail); // every worker's health check filter reads it
    },
    isHealthcheckFailed: () => server.healthcheckFailed,
    drainListeners: (opts) => void server.drainListeners(opts.graceful),
    quit: () => server.quit(),
  };
  return startAdmin({ address: address.host, port: address.port, source, stats: server.stats, ...(server.config.bootstrap.admin?.access_log_path ? { accessLogPath: server.config.bootstrap.admin.access_log_path } : {}) });
}

/** `first`'s clusters, each ORIGINAL_DST one with the hosts `others` (other workers' views) have and it lacks. */
function withOriginalDstHosts(first: readonly WorkerClusterStatus[], others: readonly WorkerClusterStatus[]): readonly WorkerClusterStatus[] {
  if (!first.some((c) => c.type === 'ORIGINAL_DST')) return first;
  return first.map((c) => {
    if (c.type !== 'ORIGINAL_DST') return c;
    const hosts = [...c.hosts];
    const keys = new Set(hosts.map((h) => `${h.address}:${h.port}`));
    for (const o of others) {
      if (o.name !== c.name) continue;
      for (const h of o.hosts) {
        const key = `${h.address}:${h.port}`;
        if (keys.has(key)) continue;
        keys.add(key);
        hosts.push(h);
      }
    }
    return { ...c, hosts };
  });
}

/** Every TLS context the config has: listener filter chains' (default chain included), then clusters'. */
function* tlsContexts(server: Server): Generator<DownstreamTlsConfig | UpstreamTlsConfig> {
  for (const l of [...server.config.listeners, ...(server.xds?.activeListenerConfigs() ?? [])]) for (const c of l.chains.values()) if (c.tls) yield c.tls;
  for (const c of [...server.config.clusters, ...(server.xds?.activeClusterConfigs() ?? [])]) yield* c.tlsContexts;
}

/**
 * Envoy's runtime stats on the main thread: `runtime.load_success` (one per snapshot loaded:
 * start-up, each /runtime_modify, each disk reload), `runtime.num_keys`, `runtime.num_layers`,
 * `runtime.admin_overrides_active`.
 */
function runtimeStatsUpdater(server: Server): () => void {
  let seen = 0;
  return () => {
    const rt = server.runtime;
    const st = server.stats;
    if (rt.generation > seen) {
      st.counter('runtime.load_success').inc(rt.generation - seen);
      seen = rt.generation;
    }
    st.gauge('runtime.num_keys', 'max').set(rt.entries().size);
    st.gauge('runtime.num_layers', 'max').set(rt.layers().length);
    st.gauge('runtime.admin_overrides_active', 'max').set(Object.keys(rt.adminValues()).length > 0 ? 1 : 0);
  };
}

function configDump(server: Server, opts: ConfigDumpOptions): unknown {
  const loadedAt = new Date(server.startTime);
  const secrets = secretsConfigDump({ staticSecrets: server.config.secrets, dynamic: server.secrets.dynamic(), sdsNames: server.secrets.sdsNames(), loadedAt });
  return buildConfigDump({ bootstrap: server.config.bootstrap, loadedAt, xds: server.xds?.dumpState(), secrets }, opts);
}
