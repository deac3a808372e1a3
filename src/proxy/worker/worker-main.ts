// Worker thread entry: builds clusters and listeners from the bootstrap it was given, serves
// traffic, and answers the main thread's questions (stats, clusters, drain, shutdown).
// A failure to build is reported back as init_failed; the main thread then exits non-zero.

import { MemorySecretStore } from '../tls/secret-store.ts';
import { parentPort, workerData } from 'node:worker_threads';
import type { MainToWorker, WorkerInit, WorkerToMain, ClusterStatus } from './messages.ts';
import { setLogLevel, setThreadName, logger } from '../log.ts';
import { registerBuiltins } from '../../filters/index.ts';
import { registry } from '../../filters/registry.ts';
import { buildStaticConfig } from '../../config/static-config.ts';
import { formatErrors } from '../../config/result.ts';
import { StatsStore } from '../stats.ts';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import { ActiveListener } from '../listener/listener-runtime.ts';
import type { ClusterManager } from '../upstream/types.ts';
import { SharedCounters } from '../shared-counters.ts';
import { healthFlagNames } from '../upstream/health-check/flags.ts';
import type { Runtime } from '../runtime.ts';
import { buildRuntime } from '../../config/runtime-layers.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const log = logger('main');

function send(m: WorkerToMain): void {
  port.postMessage(m);
}

async function start(): Promise<{ listeners: ActiveListener[]; cm: ClusterManager; stats: StatsStore; runtime: Runtime; secrets: MemorySecretStore }> {
  setThreadName(String(init.workerId + 1));
  setLogLevel(init.logLevel);
  for (const [c, l] of init.componentLogLevels) setLogLevel(l, c);
  registerBuiltins(registry);
  const built = buildStaticConfig(init.bootstrap);
  if (!built.ok) throw new Error(formatErrors(built.errors));
  const stats = new StatsStore();
  // Static secrets from this worker's own parse, then the SDS secrets the main thread already holds.
  const secrets = new MemorySecretStore([...built.value.secrets, ...Object.entries(init.secrets)]);
  const shared = new SharedCounters(init.shared);
  const cm = createClusterManager(built.value.clusters, { stats, workerId: init.workerId, shared, secrets });
  await cm.ready();
  const runtime = buildRuntime(init.bootstrap, init.runtimeAdmin);
  const rt = { stats, clusterManager: cm, workerId: init.workerId, shared, runtime, secrets };
  const listeners = built.value.listeners.map((l) => new ActiveListener(l, rt));
  const bound: Record<string, number> = {};
  for (const l of listeners) bound[l.config.name] = await l.listen(init.ports[l.config.name] ?? l.config.address.port);
  send({ type: 'ready', listeners: bound });
  return { listeners, cm, stats, runtime, secrets };
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

// Listen from the first moment: a ref'd message port keeps this thread alive while start() awaits
// (health checks and DNS use unref'd timers), and messages that arrive early wait for start().
const started = start();
const early: MainToWorker[] = [];
let handle: ((m: MainToWorker) => void) | undefined;
port.on('message', (m: MainToWorker) => (handle ? handle(m) : early.push(m)));

started.then(
  ({ listeners, cm, stats, runtime, secrets }) => {
    handle = (m: MainToWorker): void => {
      const connections = (): number => listeners.reduce((n, l) => n + l.activeConnections, 0);
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
        case 'shutdown':
          void Promise.all(listeners.map((l) => l.closeAll()))
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
