// The process: loads and validates the bootstrap, starts the workers, the xDS manager (dynamic
// resources) and the admin API, and owns the lifecycle (LIVE -> DRAINING -> exit). Config errors
// end the process with exit code 1 and one line per problem; a worker that dies takes the process
// down (as Envoy aborts).

import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { createRequire, flushCompileCache } from 'node:module';
import { releaseProtos } from '../config/protos.ts';
import { releaseMemory } from './worker/release-memory.ts';
import { loadBootstrap } from '../config/bootstrap.ts';
import { buildStaticConfig, type StaticConfig } from '../config/static-config.ts';
import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { registerBuiltins } from '../filters/index.ts';
import { registry } from '../filters/registry.ts';
import type { CliOptions } from '../cli-options.ts';
import { logger, setLogLevel } from './log.ts';
import { StatsStore, mergeSnapshots, type StatsSnapshot } from './stats.ts';
import { WorkerPool } from './worker/worker-pool.ts';
import { SharedCounters } from './shared-counters.ts';
import type { Runtime } from './runtime.ts';
import { buildRuntime } from '../config/runtime-layers.ts';
import { startAdminFor } from './admin-glue.ts';
import type { AdminServer } from './admin/server.ts';
import { SecretManagerMain } from './tls/secret-manager-main.ts';
import type { XdsManager } from './xds/xds-manager.ts';
import { SharedWasmStore } from './wasm/shared-store.ts';
import { Watchdog, WatchdogBuffer, workerKillTimeoutMs } from './worker/watchdog.ts';
import type { XdsWorkerUpdate } from './worker/messages.ts';
import { mayServeOnMainThread } from './worker/main-thread-worker.ts';
import { optimizingCompilersHeld, resumeOptimizingCompilers } from './worker/v8-flags.ts';
import { hostKey } from './host-port.ts';

const log = logger('main');
export { VERSION } from './version.ts';
import { VERSION } from './version.ts';

const lazy = createRequire(import.meta.url);

export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';
const STATE_GAUGE: Record<ServerState, number> = { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 };

/** Loads the bootstrap and applies the command line's node overrides (as Envoy does). */
export function loadConfig(o: CliOptions): ReturnType<typeof buildStaticConfig> {
  const b = loadBootstrap({ configPath: o.configPath, configYaml: o.configYaml, allowUnknownFields: o.allowUnknownStaticFields });
  if (!b.ok) return b;
  applyNodeOverrides(b.value, o);
  registerBuiltins(registry);
  return buildStaticConfig(b.value);
}

function applyNodeOverrides(b: Bootstrap__Output, o: CliOptions): void {
  if (!b.node && (o.serviceNode || o.serviceCluster || o.serviceZone)) {
    (b as { node: unknown }).node = { id: '', cluster: '', locality: null, metadata: null, user_agent_name: 'legate' };
  }
  const node = b.node as unknown as { id: string; cluster: string; locality: { zone: string; region: string; sub_zone: string } | null };
  if (!node) return;
  if (o.serviceNode) node.id = o.serviceNode;
  if (o.serviceCluster) node.cluster = o.serviceCluster;
  if (o.serviceZone) node.locality = { region: node.locality?.region ?? '', zone: o.serviceZone, sub_zone: node.locality?.sub_zone ?? '' };
}

export class Server {
  readonly options: CliOptions;
  readonly config: StaticConfig;
  readonly stats = new StatsStore();
  readonly workers = new WorkerPool();
  /** Process-wide limits shared with every worker. */
  readonly shared = SharedCounters.create();
  readonly runtime: Runtime;
  /** Static and SDS secrets; SDS updates are validated here and pushed to every worker. */
  readonly secrets: SecretManagerMain;
  readonly startTime = Date.now();
  state: ServerState = 'PRE_INITIALIZING';
  healthcheckFailed = false;
  listenerPorts: Record<string, number> = {};
  /** The xDS manager when the bootstrap has dynamic_resources (started after the workers). */
  readonly xds: XdsManager | undefined;
  #admin: AdminServer | undefined;
  #exiting = false;
  /** Process-wide Proxy-Wasm shared data and queues, handed to every worker. */
  readonly #wasmShared = SharedWasmStore.create();
  readonly #watchdogBuffer: WatchdogBuffer;
  #watchdog: Watchdog | undefined;

  constructor(options: CliOptions, config: StaticConfig) {
    this.options = options;
    this.config = config;
    this.runtime = buildRuntime(config.bootstrap);
    if (config.dynamic) {
      // Built now (subscriptions open in start()): SDS over ADS rides its stream.
      // Required only for a bootstrap with dynamic_resources: the xDS client code stays out of the others.
      const { XdsManager } = lazy('./xds/xds-manager.ts') as typeof import('./xds/xds-manager.ts');
      this.xds = new XdsManager({
        config,
        plan: config.dynamic,
        stats: this.stats,
        push: (update) => this.#pushXds(update),
        drainTimeMs: options.drainTimeS * 1000,
        workers: options.concurrency,
        onSdsRef: (ref) => this.secrets.subscribeDynamic(ref),
      });
    }
    this.secrets = new SecretManagerMain(config, this.stats, (name, secret) => void this.workers.ask({ type: 'secret', name, secret }), this.xds?.adsSecrets);
    this.#setState('PRE_INITIALIZING');
    this.stats.gauge('server.live', 'max').set(0);
    this.stats.gauge('server.concurrency', 'max').set(options.concurrency);
    this.#watchdogBuffer = new WatchdogBuffer(WatchdogBuffer.create(options.concurrency));
  }

  #setState(s: ServerState): void {
    this.state = s;
    this.stats.gauge('server.state', 'max').set(STATE_GAUGE[s]);
  }

  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  async start(): Promise<void> {
    this.#setState('INITIALIZING');
    for (const w of this.config.warnings) log.warn(w);
    // SDS first: a secret that arrives before the workers start is in their WorkerInit; later
    // ones are pushed. Listeners needing a missing secret reset connections until it arrives.
    this.secrets.start();
    // Nothing to fetch after start-up: no xDS, no SDS.
    const staticConfig = !this.xds && this.config.sdsRefs.length === 0;
    // Then nothing after start-up is worth compiling until traffic comes (first-traffic.ts).
    const holdUntilTraffic = optimizingCompilersHeld() && staticConfig;
    // Port-0 listeners: reserve a port here (SO_REUSEPORT) so every worker binds the same one.
    const reserved: net.Server[] = [];
    const ports: Record<string, number> = {};
    for (const l of this.config.listeners) {
      if (l.address.port !== 0) continue;
      const s = net.createServer();
      await new Promise<void>((res, rej) => s.once('error', rej).listen({ host: l.address.host, port: 0, reusePort: true }, res));
      ports[l.name] = (s.address() as net.AddressInfo).port;
      reserved.push(s);
    }
    try {
      this.listenerPorts = await this.workers.start(
        this.options.concurrency,
        {
          bootstrap: this.config.bootstrap,
          logLevel: this.options.logLevel,
          componentLogLevels: this.options.componentLogLevels,
          shared: this.shared.buffer,
          runtimeAdmin: this.runtime.adminValues(),
          ports,
          secrets: this.secrets.dynamicSecrets(),
          drainTimeS: this.options.drainTimeS,
          wasmShared: this.#wasmShared,
          watchdog: this.#watchdogBuffer.buffer,
          compilersHeldUntilTraffic: holdUntilTraffic,
        },
        (code) => void this.#exit(code),
        mayServeOnMainThread({ ...this.options, dynamic: this.config.dynamic, sdsRefs: this.config.sdsRefs }),
      );
    } finally {
      for (const s of reserved) s.close();
    }
    this.stats.counter('listener_manager.workers_started').inc(this.options.concurrency);
    this.#watchdog = new Watchdog(this.#watchdogBuffer, this.options.concurrency, { killAfterMs: workerKillTimeoutMs(this.config.bootstrap) }, (i, ms, plugin) => void this.#recoverWorker(i, ms, plugin));
    // Worker 0 on the main thread is not watched: the watchdog could not run while it is stuck.
    if (this.workers.onMainThread) this.#watchdog.pause(0);
    this.#watchdog.start();
    this.stats.gauge('listener_manager.total_listeners_active', 'max').set(this.config.listeners.length);
    this.stats.counter('listener_manager.listener_added').inc(this.config.listeners.length);
    this.stats.counter('cluster_manager.cluster_added').inc(this.config.clusters.length);
    this.stats.gauge('cluster_manager.active_clusters', 'max').set(this.config.clusters.length);
    if (this.config.admin) {
      this.#admin = await startAdminFor(this, this.config.admin.address);
      if (this.options.adminAddressPath) {
        writeFileSync(this.options.adminAddressPath, hostKey(this.config.admin.address.host, this.#admin.port));
      }
    }
    // Every module start-up needs is loaded: writing the compile cache out now also frees this
    // thread's copy of it (Node keeps what it read, ~3.7 MB here, until a flush or exit).
    flushCompileCache();
    // A static config is decoded, validated and in the workers: the protos can go until something
    // needs them again (/config_dump, a restarted worker), which loads what it uses.
    if (staticConfig) {
      releaseProtos();
      releaseMemory();
    }
    // The launcher held Sparkplug, Maglev and TurboFan back for the start-up (v8-flags.ts): the
    // xDS initial fetch, which can be large, gets them now; a static config's first connection does.
    if (!holdUntilTraffic) resumeOptimizingCompilers();
    // Envoy's init manager: not LIVE (/ready 503) until every SDS secret's first fetch has ended
    // (accepted, rejected, or initial_fetch_timeout; `0s` waits for ever), and the xDS initial
    // fetch (CDS and its EDS, then LDS and its RDS) has ended.
    const waits: Promise<unknown>[] = [];
    if (this.config.sdsRefs.length > 0) {
      log.info(`waiting for ${this.config.sdsRefs.length} SDS secret(s): ${this.secrets.sdsNames().join(', ')}`);
      waits.push(this.secrets.initialized());
    }
    if (this.xds) {
      log.info('waiting for the xDS initial fetch (CDS, EDS, LDS, RDS)');
      waits.push(this.xds.start());
    }
    await Promise.all(waits);
    if (this.state !== 'INITIALIZING') return;
    this.#setState('LIVE');
    this.stats.gauge('server.live', 'max').set(1);
    const listeners = this.config.listeners.length + (this.xds?.activeListenerConfigs().length ?? 0);
    log.info(`legate ${VERSION} serving ${listeners} listener(s) on ${this.options.concurrency} worker(s)` + (this.workers.onMainThread ? ' (worker 0 on the main thread)' : '') + (this.#admin ? `, admin on port ${this.#admin.port}` : ''));
  }

  /** Sends a validated xDS update to every worker; keeps listenerPorts current from their replies. */
  async #pushXds(update: XdsWorkerUpdate): Promise<void> {
    const replies = await this.workers.ask({ type: 'xds', update });
    const first = replies.find((r) => r.listeners);
    if (first?.listeners) this.listenerPorts = { ...first.listeners };
    const errors = new Set(replies.flatMap((r) => r.errors ?? []));
    for (const e of errors) log.error(`xDS update: a worker could not apply: ${e}`);
    if (errors.size > 0) this.stats.counter('listener_manager.listener_create_failure').inc(errors.size);
  }

  /**
   * The watchdog found worker `i` stuck (no event-loop beat for `ms`, e.g. a plugin's endless
   * loop): log who, count it as Envoy's watchdog does, and replace the worker with a fresh one that
   * gets today's secrets, runtime and dynamic (xDS) config. Its open connections are lost.
   */
  async #recoverWorker(i: number, ms: number, plugin: string | undefined): Promise<void> {
    if (this.#exiting || this.state === 'DRAINING') return;
    log.error(`watchdog: worker ${i} has not run its event loop for ${ms} ms${plugin ? `, stuck in Wasm plugin ${plugin}` : ''}; restarting it`);
    this.stats.counter('server.watchdog_mega_miss').inc();
    this.stats.counter(`server.worker_${i}.watchdog_mega_miss`).inc();
    try {
      await this.workers.restart(i, { secrets: this.secrets.dynamicSecrets(), runtimeAdmin: this.runtime.adminValues(), ports: this.listenerPorts });
      if (this.xds) await this.workers.askOne(i, { type: 'xds', update: this.xds.fullUpdate() });
      log.info(`watchdog: worker ${i} restarted`);
      this.#watchdog?.reset(i);
    } catch (e) {
      log.error(`watchdog: worker ${i} could not be restarted: ${e instanceof Error ? e.message : String(e)}`);
      void this.#exit(1);
    }
  }

  /** Merged stats: the main thread's plus every worker's. */
  async statsSnapshot(): Promise<StatsSnapshot> {
    this.stats.gauge('server.uptime', 'max').set(Math.floor((Date.now() - this.startTime) / 1000));
    const mem = process.memoryUsage();
    this.stats.gauge('server.memory_allocated', 'max').set(mem.heapUsed);
    this.stats.gauge('server.memory_heap_size', 'max').set(mem.heapTotal);
    this.stats.gauge('server.memory_physical_size', 'max').set(mem.rss);
    const replies = await this.workers.ask({ type: 'stats' });
    const snaps = [this.stats.snapshot(), ...replies.flatMap((r) => (r.stats ? [r.stats] : []))];
    return mergeSnapshots(snaps, this.stats.gaugeModes());
  }

  setLogLevel(level: Parameters<typeof setLogLevel>[0], component?: string): void {
    setLogLevel(level, component);
    void this.workers.ask(component ? { type: 'log_level', level, component } : { type: 'log_level', level });
  }

  /** /runtime_modify: the admin layer changes here and on every worker. */
  async setRuntime(values: Readonly<Record<string, string>>): Promise<void> {
    this.runtime.setAdmin(values);
    await this.workers.ask({ type: 'runtime', values });
  }

  /** /drain_listeners: stop accepting; graceful -> drain connections over the drain time. */
  async drainListeners(graceful: boolean): Promise<void> {
    await this.workers.ask({ type: 'stop_accepting' });
    this.stats.gauge('listener_manager.total_listeners_active', 'max').set(0);
    this.stats.gauge('listener_manager.total_listeners_draining', 'max').set(this.config.listeners.length + (this.xds?.activeListenerConfigs().length ?? 0));
    if (graceful) await this.workers.ask({ type: 'drain' });
  }

  /** SIGTERM: stop accepting, drain for --drain-time-s (or until no connection is left), exit 0. */
  async shutdown(): Promise<void> {
    if (this.state === 'DRAINING') return;
    this.#setState('DRAINING');
    log.info(`shutting down: draining listeners for up to ${this.options.drainTimeS}s`);
    await this.workers.ask({ type: 'stop_accepting' });
    const deadline = Date.now() + this.options.drainTimeS * 1000;
    for (;;) {
      const replies = await this.workers.ask({ type: 'drain' });
      const open = replies.reduce((n, r) => n + (r.connections ?? 0), 0);
      log.debug(`draining: ${open} connection(s) open`);
      if (open === 0 || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
    await this.#exit(0);
  }

  async #exit(code: number): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.secrets.close();
    this.xds?.close();
    this.#watchdog?.stop();
    await this.workers.shutdown().catch(() => undefined);
    await this.#admin?.close().catch(() => undefined);
    log.info(`exiting (${code})`);
    process.exit(code);
  }

  quit(): void {
    void this.#exit(0);
  }
}
