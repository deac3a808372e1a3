// A test AdminSource over real StatsStores ("main" and two "workers"), recording what admin calls did.

import { mergeSnapshots, StatsStore, type StatsSnapshot } from '../../../src/proxy/stats.ts';
import type { AdminSource, ClusterStatus, ConfigDumpOptions, ListenerStatus, RuntimeLayer, ServerInfo, ServerState } from '../../../src/proxy/admin/source.ts';

export class FakeSource implements AdminSource {
  readonly main = new StatsStore();
  readonly workers = [new StatsStore(), new StatsStore()];
  state: ServerState = 'LIVE';
  hcFailed = false;
  drains: Array<{ inboundOnly: boolean; graceful: boolean }> = [];
  quits = 0;
  dumpCalls: ConfigDumpOptions[] = [];
  clusterList: ClusterStatus[] = [];
  listenerList: ListenerStatus[] = [];

  async stats(): Promise<StatsSnapshot> {
    const stores = [this.main, ...this.workers];
    const modes = Object.assign({}, ...stores.map((s) => s.gaugeModes()));
    return mergeSnapshots(stores.map((s) => s.snapshot()), modes);
  }
  serverInfo(): ServerInfo {
    return {
      version: 'abc123/0.1.0/Clean/RELEASE/legate',
      state: this.state,
      hotRestartVersion: 'disabled',
      uptimeCurrentEpochS: 12.7,
      uptimeAllEpochsS: 12.7,
      commandLineOptions: { concurrency: 2, mode: 'Serve', disable_hot_restart: true },
      node: { id: 'node-1', cluster: 'test' },
    };
  }
  clusters(): Promise<readonly ClusterStatus[]> {
    return Promise.resolve(this.clusterList);
  }
  listeners(): readonly ListenerStatus[] {
    return this.listenerList;
  }
  configDump(opts: ConfigDumpOptions): unknown {
    this.dumpCalls.push(opts);
    const configs: unknown[] = [{ '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump', bootstrap: { node: { id: 'node-1' } } }];
    if (opts.includeEds) configs.push({ '@type': 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump' });
    if (opts.resource === 'dynamic_active_clusters') return { configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster', cluster: { name: 'a' } }] };
    if (opts.resource) return undefined;
    return { configs };
  }
  runtime(): readonly RuntimeLayer[] {
    return [
      { name: 'static_layer', values: { 'a.b': '1', 'c.d': 'x' } },
      { name: 'admin', values: { 'a.b': '2' } },
    ];
  }
  healthcheck(fail: boolean): void {
    this.hcFailed = fail;
  }
  isHealthcheckFailed(): boolean {
    return this.hcFailed;
  }
  drainListeners(opts: { inboundOnly: boolean; graceful: boolean }): void {
    this.drains.push(opts);
  }
  quit(): void {
    this.quits++;
  }
}

/** Parses Prometheus text exposition into TYPE lines and samples. */
export function parseProm(text: string): { types: Map<string, string>; samples: Array<{ name: string; labels: Record<string, string>; value: number }> } {
  const types = new Map<string, string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad prometheus line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { types, samples };
}
