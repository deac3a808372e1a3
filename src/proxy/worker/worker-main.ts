// A worker's data plane: builds clusters and listeners from the bootstrap it was given, serves
// traffic, applies the main thread's xDS updates (dynamic-config.ts), and answers its questions
// (stats, clusters, drain, shutdown) on a message port. A failure to build is reported back as
// init_failed; the main thread then exits non-zero. It runs on a worker thread (worker-thread.ts)
// or, as worker 0 of a config with no control plane, on the main thread (main-thread-worker.ts).

import { MemorySecretStore } from '../tls/secret-store.ts';
import { createRequire, flushCompileCache } from 'node:module';
import type { MessagePort } from 'node:worker_threads';
import type { MainToWorker, WorkerInit, WorkerToMain, ClusterStatus } from './messages.ts';
import { setLogLevel, setThreadName, logger } from '../log.ts';
import { registerBuiltins } from '../../filters/index.ts';
import { registry } from '../../filters/registry.ts';
import { buildStaticConfig } from '../../config/static-config.ts';
import { formatErrors } from '../../config/result.ts';
import { StatsStore } from '../stats.ts';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import type { ClusterManager } from '../upstream/types.ts';
import { DynamicConfig } from './dynamic-config.ts';
import { releaseMemory, releaseMemoryAfterConfigUpdate } from './release-memory.ts';
import { WatchdogBuffer, workerKillTimeoutMs } from './watchdog.ts';
import { whenTrafficStarts } from './first-traffic.ts';
import { turnOnHeldCompilers } from './v8-flags.ts';
import { attachProcessWasmStore } from '../wasm/shared-store.ts';
import { setWasmCallHook, setWasmTrace } from '../wasm/thread-hooks.ts';
import { statusName } from '../wasm/abi.ts';
import { setLocalNode } from '../local-info.ts';
import { structToJson } from '../../config/struct-json.ts';
import type { WasmPluginRuntime } from '../wasm/plugin-runtime.ts';
import { RouteRegistry } from './route-registry.ts';
import { Limits } from '../limits.ts';
import { SharedCounters } from '../shared-counters.ts';
import { healthFlagNames } from '../upstream/health-check/flags.ts';
import type { Runtime } from '../runtime.ts';
import { buildRuntime } from '../../config/runtime-layers.ts';
import { adoptUnpacked } from '../../config/unpacked-anys.ts';

const log = logger('main');
const lazy = createRequire(import.meta.url);

/** This worker's Proxy-Wasm services (envoy.bootstrap.wasm), kept referenced for the worker's life. */
const wasmServices: WasmPluginRuntime[] = [];

/**
 * Beats from the event loop (a stuck loop stops them) ten times per kill timeout, at most once a
 * second (an idle worker wakes for nothing else), and marks time spent in plugin code.
 */
function startBeating(buf: WatchdogBuffer, id: number, killAfterMs: number): void {
  buf.beat(id);
  setInterval(() => buf.beat(id), Math.max(10, Math.min(1000, Math.floor(killAfterMs / 10)))).unref();
  setWasmCallHook({ enter: (label) => buf.enter(id, label), leave: () => buf.leave(id) });
}

function clusterStatus(cm: ClusterManager): ClusterStatus[] {
  return cm.names().flatMap((name) => {
    const c = cm.get(name);
    if (!c) return [];
    return [
      {
        name,
        type: c.info.type,
        circuitBreakers: c.info.circuitBreakers,
        hosts: c.hosts().map((h) => ({
          address: h.address,
          port: h.port,
          hostname: h.hostname,
          weight: h.weight,
          priority: h.priority,
          health: h.health,
          healthFlags: healthFlagNames(h),
          region: h.locality?.region ?? '',
          zone: h.locality?.zone ?? '',
          subZone: h.locality?.subZone ?? '',
        })),
      },
    ];
  });
}

/** Runs a worker's data plane on `port` (the thread's parentPort, or one end of a MessageChannel in the main thread). */
export function runWorker(init: WorkerInit, port: MessagePort, o: { readonly onMainThread?: boolean } = {}): void {
  function send(m: WorkerToMain): void {
    port.postMessage(m);
  }

  async function start(): Promise<{ dyn: DynamicConfig; cm: ClusterManager; stats: StatsStore; runtime: Runtime; secrets: MemorySecretStore }> {
    if (!o.onMainThread) setThreadName(String(init.workerId + 1));
    setLogLevel(init.logLevel);
    for (const [c, l] of init.componentLogLevels) setLogLevel(l, c);
    registerBuiltins(registry);
    adoptUnpacked(init.unpacked);
    if (init.wasmShared) attachProcessWasmStore(init.wasmShared, init.workerId);
    const n = init.bootstrap.node;
    setLocalNode(n ? { id: n.id, cluster: n.cluster, metadata: n.metadata ? structToJson(n.metadata) : {} } : undefined);
    if (init.watchdog) startBeating(new WatchdogBuffer(init.watchdog), init.workerId, workerKillTimeoutMs(init.bootstrap));
    if (init.compilersHeldUntilTraffic) whenTrafficStarts(turnOnHeldCompilers);
    if (init.wasmTrace || process.env.LEGATE_WASM_TRACE === '1') {
      const trace = logger('wasm');
      setWasmTrace((label) => (name, args, status) => trace.info(`wasm trace ${label}: ${name}(${args.join(', ')}) \u2192 ${statusName(status)}`));
    }
    const routes = new RouteRegistry();
    // Static listeners' HCMs with `rds` get this worker's live route sources (filled by xds updates).
    const built = buildStaticConfig(init.bootstrap, { rds: routes.rdsHook });
    if (!built.ok) throw new Error(formatErrors(built.errors));
    const stats = new StatsStore();
    // Static secrets from this worker's own parse, then the SDS secrets the main thread already holds.
    const secrets = new MemorySecretStore([...built.value.secrets, ...Object.entries(init.secrets)]);
    const shared = new SharedCounters(init.shared);
    const cm = createClusterManager(built.value.clusters, { stats, workerId: init.workerId, shared, secrets });
    await cm.ready();
    const runtime = buildRuntime(init.bootstrap, init.runtimeAdmin);
    const rt = { stats, clusterManager: cm, workerId: init.workerId, shared, runtime, secrets };
    const drainTimeMs = (init.drainTimeS ?? Limits.drainTimeS) * 1000;
    const dyn = new DynamicConfig({ rt, clusterManager: cm, staticSecrets: built.value.secrets, drainTimeMs, routes });
    for (const l of built.value.listeners) await dyn.addListener(l, init.ports[l.name] ?? l.address.port);
    if (built.value.wasmServices.length > 0) {
      // Required here: a config without envoy.bootstrap.wasm services never loads the VM's modules.
      const { startWasmServices } = lazy('../wasm/bootstrap-services.ts') as typeof import('../wasm/bootstrap-services.ts');
      const { maxMemoryFrom } = lazy('../wasm/plugin-runtime.ts') as typeof import('../wasm/plugin-runtime.ts');
      wasmServices.push(...startWasmServices(built.value.wasmServices, init.workerId, { stats, clusterManager: cm, maxMemoryBytes: maxMemoryFrom(runtime) }));
    }
    flushCompileCache(); // for the next worker, or the next legate
    releaseMemory();
    send({ type: 'ready', listeners: dyn.ports() });
    return { dyn, cm, stats, runtime, secrets };
  }

  // Listen from the first moment: a ref'd message port keeps this thread alive while start() awaits
  // (health checks and DNS use unref'd timers), and messages that arrive early wait for start().
  const started = start();
  const early: MainToWorker[] = [];
  let handle: ((m: MainToWorker) => void) | undefined;
  port.on('message', (m: MainToWorker) => (handle ? handle(m) : early.push(m)));

  started.then(
    ({ dyn, cm, stats, runtime, secrets }) => {
      handle = (m: MainToWorker): void => {
        const listeners = dyn.all();
        const connections = (): number => dyn.all().reduce((n, l) => n + l.activeConnections, 0);
        switch (m.type) {
          case 'stats':
            cm.refreshStats();
            return send({ type: 'reply', id: m.id, stats: stats.snapshot() });
          case 'clusters':
            return send({ type: 'reply', id: m.id, clusters: clusterStatus(cm) });
          case 'runtime':
            runtime.setAdmin(m.values);
            return send({ type: 'reply', id: m.id });
          case 'secret':
            secrets.set(m.name, m.secret);
            return send({ type: 'reply', id: m.id });
          case 'log_level':
            setLogLevel(m.level, m.component);
            return send({ type: 'reply', id: m.id });
          case 'stop_accepting':
            void Promise.all(listeners.map((l) => l.stopAccepting())).then(() => send({ type: 'reply', id: m.id, connections: connections() }));
            return;
          case 'drain':
            for (const l of listeners) l.drain();
            return send({ type: 'reply', id: m.id, connections: connections() });
          case 'xds':
            adoptUnpacked(m.unpacked);
            void dyn.apply(m.update).then((r) => {
              send({ type: 'reply', id: m.id, listeners: r.listeners, ...(r.errors.length > 0 ? { errors: r.errors } : {}) });
              releaseMemoryAfterConfigUpdate();
            });
            return;
          case 'shutdown':
            void dyn
              .closeAll()
              .then(() => cm.close())
              .finally(() => {
                send({ type: 'reply', id: m.id });
                port.close();
              });
            return;
        }
      };
      for (const m of early.splice(0)) handle(m);
    },
    (e: unknown) => {
      log.error(`worker ${init.workerId} failed to start: ${e instanceof Error ? e.message : String(e)}`);
      send({ type: 'init_failed', error: e instanceof Error ? e.message : String(e) });
    },
  );
}
