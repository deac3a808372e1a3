// xDS scale bench (`npm run bench:xds`, not a test): the test control plane serves a snapshot of
// 1,000 EDS clusters, 10,000 endpoints (10 per cluster) and 1,000 routes (one RouteConfiguration
// behind one RDS listener) to a legate process subscribed over ADS, SotW and then delta. For each
// type it reports the time from the control plane's send of the version to the ACK, then the
// same for an update of 100 ClusterLoadAssignments, and the process RSS before and after (from
// /proc/<pid>/status, and heap from the admin /memory endpoint). Prints a table and writes JSON
// to bench/results/xds-scale-<timestamp>.json.
//
// Options: --mode sotw|delta|both (default both), --clusters N (1000), --endpoints-per-cluster N (10),
// --routes N (1000).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLegate, type Legate } from '../test/helpers/legate.ts';
import { ControlPlane, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, asTypeUrl } from '../test/helpers/xds/control-plane.ts';
import { adsBootstrap, edsCluster, freePort, rdsListener, type Mode } from '../test/helpers/xds/e2e.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    clusters: { type: 'string', default: '1000' },
    'endpoints-per-cluster': { type: 'string', default: '10' },
    routes: { type: 'string', default: '1000' },
  },
});
const CLUSTERS = Number(values.clusters);
const PER_CLUSTER = Number(values['endpoints-per-cluster']);
const ROUTES = Number(values.routes);
const MODES: Mode[] = values.mode === 'both' ? ['sotw', 'delta'] : [values.mode as Mode];
const TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE] as const;
const SHORT: Record<string, string> = { [CLUSTER_TYPE]: 'CDS', [ENDPOINT_TYPE]: 'EDS', [LISTENER_TYPE]: 'LDS', [ROUTE_TYPE]: 'RDS' };

interface TypeTiming {
  readonly type: string;
  /** Responses sent for the version (EDS in SotW: one, carrying every subscribed name). */
  readonly responses: number;
  /** First send of the version → its last ACK, ms. */
  readonly sendToAckMs: number;
}

interface RunResult {
  readonly mode: Mode;
  readonly clusters: number;
  readonly endpoints: number;
  readonly routes: number;
  readonly initial: TypeTiming[];
  /** First send (CDS) → last ACK of any type, ms. */
  readonly initialTotalMs: number;
  readonly update: TypeTiming[];
  readonly rssBeforeKiB: number;
  readonly rssAfterKiB: number;
  readonly rssAfterUpdateKiB: number;
  readonly memoryAfter: unknown;
  readonly activeClusters: number | undefined;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function clusterName(i: number): string {
  return `svc-${String(i).padStart(4, '0')}`;
}

function loadAssignment(i: number, gen: number): object {
  const lb = [];
  for (let e = 0; e < PER_CLUSTER; e++) {
    const n = i * PER_CLUSTER + e;
    // Addresses nobody dials (no health checks, no traffic): 127.x.y.z:port.
    lb.push({ endpoint: { address: { socket_address: { address: `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port_value: 10_000 + gen } } } });
  }
  return { cluster_name: clusterName(i), endpoints: [{ lb_endpoints: lb }] };
}

function bigRouteConfig(): object {
  const routes = [];
  for (let r = 0; r < ROUTES; r++) routes.push({ match: { prefix: `/r${r}/` }, route: { cluster: clusterName(r % CLUSTERS) } });
  return { name: 'routes', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] };
}

/** Per type: the first send of `version` → the last ACK of it. */
async function timings(cp: ControlPlane, version: string, types: readonly string[]): Promise<TypeTiming[]> {
  const out: TypeTiming[] = [];
  for (const type of types) {
    const url = asTypeUrl(type);
    await cp.ack(type, version, 600_000);
    const sent = cp.responses.filter((r) => r.typeUrl === url && r.version === version);
    const nonces = new Set(sent.map((r) => r.nonce));
    const acks = cp.requests.filter((r) => r.request.type_url === url && nonces.has(r.request.response_nonce) && !r.request.error_detail);
    const nacks = cp.requests.filter((r) => r.request.type_url === url && nonces.has(r.request.response_nonce) && r.request.error_detail);
    if (nacks.length > 0) throw new Error(`${SHORT[type]} NACKed: ${nacks[0]!.request.error_detail?.message}`);
    out.push({ type: SHORT[type]!, responses: sent.length, sendToAckMs: Math.max(...acks.map((a) => a.at)) - Math.min(...sent.map((r) => r.at)) });
  }
  return out;
}

async function settle(legate: Legate): Promise<void> {
  // Let the workers finish applying and the GC catch up before reading RSS.
  await new Promise((r) => setTimeout(r, 2000));
  await fetch(`${legate.admin}/ready`).catch(() => undefined);
}

async function run(mode: Mode): Promise<RunResult> {
  const cp = await ControlPlane.start();
  const listenPort = await freePort();
  const legate = await startLegate(adsBootstrap(cp, mode), { timeoutMs: 60_000 });
  try {
    await cp.waitFor(() => cp.requestsFor(CLUSTER_TYPE).length > 0 && cp.requestsFor(LISTENER_TYPE).length > 0, 'the CDS and LDS subscriptions', 60_000);
    await settle(legate);
    const pid = legate.proc.pid!;
    const rssBeforeKiB = rssKiB(pid);
    const t0 = performance.now();
    cp.update((s) => {
      for (let i = 0; i < CLUSTERS; i++) s.setJson(CLUSTER_TYPE, clusterName(i), edsCluster(clusterName(i)));
      for (let i = 0; i < CLUSTERS; i++) s.setJson(ENDPOINT_TYPE, clusterName(i), loadAssignment(i, 0));
      s.setJson(LISTENER_TYPE, 'http', rdsListener('http', listenPort, 'routes'));
      s.setJson(ROUTE_TYPE, 'routes', bigRouteConfig());
    }, 'v1');
    process.stderr.write(`  ${mode}: snapshot packed in ${(performance.now() - t0).toFixed(0)} ms, waiting for ACKs…\n`);
    const initial = await timings(cp, 'v1', TYPES);
    const firstSend = Math.min(...cp.responses.filter((r) => r.version === 'v1').map((r) => r.at));
    const lastAck = Math.max(...cp.requests.filter((r) => !r.request.error_detail && cp.responses.some((s) => s.version === 'v1' && s.nonce === r.request.response_nonce)).map((r) => r.at));
    await settle(legate);
    const rssAfterKiB = rssKiB(pid);
    const memoryAfter = await (await fetch(`${legate.admin}/memory`)).json().catch(() => undefined);
    const stats = await legate.stats();
    // An update of 10% of the endpoints.
    cp.update((s) => {
      for (let i = 0; i < CLUSTERS; i += 10) s.setJson(ENDPOINT_TYPE, clusterName(i), loadAssignment(i, 1));
    }, 'v2');
    const update = await timings(cp, 'v2', [ENDPOINT_TYPE]);
    await settle(legate);
    return {
      mode,
      clusters: CLUSTERS,
      endpoints: CLUSTERS * PER_CLUSTER,
      routes: ROUTES,
      initial,
      initialTotalMs: lastAck - firstSend,
      update,
      rssBeforeKiB,
      rssAfterKiB,
      rssAfterUpdateKiB: rssKiB(pid),
      memoryAfter,
      activeClusters: stats['cluster_manager.active_clusters'],
    };
  } finally {
    await legate.stop();
    await cp.close();
  }
}

const results: RunResult[] = [];
for (const mode of MODES) {
  process.stderr.write(`xds-scale: ${mode}, ${CLUSTERS} clusters, ${CLUSTERS * PER_CLUSTER} endpoints, ${ROUTES} routes\n`);
  results.push(await run(mode));
}

const mib = (k: number): string => (k / 1024).toFixed(1);
const rows: string[][] = [['mode', 'phase', 'type', 'responses', 'send→ACK ms']];
for (const r of results) {
  for (const t of r.initial) rows.push([r.mode, 'initial', t.type, String(t.responses), t.sendToAckMs.toFixed(1)]);
  rows.push([r.mode, 'initial', 'all', '', r.initialTotalMs.toFixed(1)]);
  for (const t of r.update) rows.push([r.mode, `update ${Math.ceil(r.clusters / 10)} CLAs`, t.type, String(t.responses), t.sendToAckMs.toFixed(1)]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log();
for (const r of results) {
  console.log(`${r.mode}: RSS ${mib(r.rssBeforeKiB)} MiB before → ${mib(r.rssAfterKiB)} MiB after (+${mib(r.rssAfterKiB - r.rssBeforeKiB)} MiB), ${mib(r.rssAfterUpdateKiB)} MiB after the update; active_clusters ${r.activeClusters}`);
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}xds-scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ node: process.version, date: new Date().toISOString(), results }, null, 2));
console.log(`\nwrote ${file}`);
