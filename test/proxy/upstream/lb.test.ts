import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadBalancer, createSelector } from '../../../src/proxy/upstream/lb/index.ts';
import { RingHash } from '../../../src/proxy/upstream/lb/ring-hash.ts';
import { Maglev } from '../../../src/proxy/upstream/lb/maglev.ts';
import { xxHash64 } from '../../../src/proxy/upstream/hash.ts';
import type { Host, HostHealth, LbConfig, LbPolicy } from '../../../src/proxy/upstream/types.ts';

function host(i: number, opts: { weight?: number; priority?: number; health?: HostHealth } = {}): Host {
  return {
    address: `10.0.0.${i}`,
    port: 80,
    key: `10.0.0.${i}:80`,
    hostname: undefined,
    weight: opts.weight ?? 1,
    priority: opts.priority ?? 0,
    locality: undefined,
    health: opts.health ?? 'healthy',
    activeRequests: 0,
  };
}

function lbConfig(policy: LbPolicy, over: Partial<LbConfig> = {}): LbConfig {
  return {
    policy,
    choiceCount: 2,
    activeRequestBias: 1,
    minRingSize: 1024,
    maxRingSize: 8 * 1024 * 1024,
    maglevTableSize: 65537,
    panicThresholdPercent: 50,
    overprovisioningFactor: 140,
    useHostnameForHashing: false,
    localityWeighted: false,
    ...over,
  };
}

function counts(lb: LoadBalancer, n: number, hashed = false): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.chooseHost({ hashKey: hashed ? xxHash64(`req-${i}`) : undefined });
    assert.ok(h);
    out.set(h.key, (out.get(h.key) ?? 0) + 1);
  }
  return out;
}

function assertShares(c: Map<string, number>, expected: Record<string, number>, n: number, tol: number): void {
  for (const [k, share] of Object.entries(expected)) {
    const got = (c.get(k) ?? 0) / n;
    assert.ok(Math.abs(got - share) <= tol, `${k}: got ${got.toFixed(3)}, want ${share.toFixed(3)} ± ${tol}`);
  }
}

const WEIGHTED = [host(1, { weight: 1 }), host(2, { weight: 2 }), host(3, { weight: 5 })];
const WEIGHTED_SHARES = { '10.0.0.1:80': 1 / 8, '10.0.0.2:80': 2 / 8, '10.0.0.3:80': 5 / 8 };
const EQUAL_SHARES = { '10.0.0.1:80': 1 / 3, '10.0.0.2:80': 1 / 3, '10.0.0.3:80': 1 / 3 };

test('ROUND_ROBIN: unweighted rotation visits hosts in turn', () => {
  const hosts = [host(1), host(2), host(3)];
  const lb = new LoadBalancer(lbConfig('ROUND_ROBIN'), hosts);
  const seq = Array.from({ length: 6 }, () => lb.chooseHost({ hashKey: undefined })!.key);
  assert.deepEqual(seq.slice(3), seq.slice(0, 3));
  assert.equal(new Set(seq.slice(0, 3)).size, 3);
});

test('ROUND_ROBIN: weights honoured exactly over a full EDF cycle', () => {
  const c = counts(new LoadBalancer(lbConfig('ROUND_ROBIN'), WEIGHTED), 8000);
  assertShares(c, WEIGHTED_SHARES, 8000, 0.002);
});

test('LEAST_REQUEST: unweighted P2C avoids the busy host; weighted form honours weights', () => {
  const hosts = [host(1), host(2), host(3)];
  hosts[0]!.activeRequests = 50;
  const c = counts(new LoadBalancer(lbConfig('LEAST_REQUEST'), hosts), 3000);
  // The busy host wins only when both choices land on it: (1/3)^2.
  assert.ok((c.get('10.0.0.1:80') ?? 0) / 3000 < 0.16);
  const w = counts(new LoadBalancer(lbConfig('LEAST_REQUEST'), WEIGHTED.map((h) => ({ ...h }))), 8000);
  assertShares(w, WEIGHTED_SHARES, 8000, 0.01);
});

test('LEAST_REQUEST: weighted form divides weight by active requests + 1', () => {
  const hosts = [host(1, { weight: 2 }), host(2, { weight: 1 })];
  hosts[0]!.activeRequests = 3; // effective 2/4 = 0.5 vs 1/1
  const c = counts(new LoadBalancer(lbConfig('LEAST_REQUEST'), hosts), 3000);
  assertShares(c, { '10.0.0.1:80': 1 / 3, '10.0.0.2:80': 2 / 3 }, 3000, 0.02);
});

test('RANDOM: uniform over hosts (Envoy ignores weights here)', () => {
  const c = counts(new LoadBalancer(lbConfig('RANDOM'), [host(1), host(2), host(3)]), 30000);
  assertShares(c, EQUAL_SHARES, 30000, 0.02);
});

test('RING_HASH: deterministic for a hash, weights replicate entries, random without a hash', () => {
  const cfg = lbConfig('RING_HASH');
  const a = new LoadBalancer(cfg, WEIGHTED);
  const b = new LoadBalancer(cfg, [...WEIGHTED].reverse());
  for (let i = 0; i < 200; i++) {
    const k = xxHash64(`user-${i}`);
    assert.equal(a.chooseHost({ hashKey: k })!.key, b.chooseHost({ hashKey: k })!.key);
    assert.equal(a.chooseHost({ hashKey: k })!.key, a.chooseHost({ hashKey: k })!.key);
  }
  const ring = new RingHash(WEIGHTED, cfg);
  assert.equal(ring.size, 8 * 128); // min weight 1/8 × 1024 → scale 8192 → 1024 per weight 1/8
  assertShares(counts(a, 20000, true), WEIGHTED_SHARES, 20000, 0.05);
  assert.ok(counts(a, 300).size === 3);
});

test('RING_HASH: removing a host moves few of the other hosts keys', () => {
  const cfg = lbConfig('RING_HASH');
  const all = [host(1), host(2), host(3), host(4)];
  const before = new LoadBalancer(cfg, all);
  const after = new LoadBalancer(cfg, all.slice(0, 3));
  let kept = 0;
  let others = 0;
  for (let i = 0; i < 1000; i++) {
    const k = xxHash64(`k${i}`);
    const b = before.chooseHost({ hashKey: k })!.key;
    if (b === '10.0.0.4:80') continue;
    others++;
    if (after.chooseHost({ hashKey: k })!.key === b) kept++;
  }
  // Replicas per host grow (the ring keeps min_ring_size), so a few keys move; most stay put.
  assert.ok(kept / others > 0.75, `${kept}/${others}`);
});

test('MAGLEV: table filled in proportion to weight; deterministic lookup', () => {
  const m = new Maglev(WEIGHTED, 65537, false);
  const c = m.counts();
  assert.equal([...c.values()].reduce((a, b) => a + b, 0), 65537);
  assertShares(c, WEIGHTED_SHARES, 65537, 0.01);
  const lb = new LoadBalancer(lbConfig('MAGLEV'), [...WEIGHTED].reverse());
  const lb2 = new LoadBalancer(lbConfig('MAGLEV'), WEIGHTED);
  for (let i = 0; i < 200; i++) {
    const k = xxHash64(`user-${i}`);
    assert.equal(lb.chooseHost({ hashKey: k })!.key, lb2.chooseHost({ hashKey: k })!.key);
  }
  const eq = new Maglev([host(1), host(2), host(3)], 65537, false).counts();
  assertShares(eq, EQUAL_SHARES, 65537, 0.01);
});

test('priority: lowest level with healthy hosts gets the traffic; all-unhealthy level falls back', () => {
  const p0 = [host(1, { priority: 0, health: 'unhealthy' }), host(2, { priority: 0, health: 'unhealthy' })];
  const p1 = [host(3, { priority: 1 }), host(4, { priority: 1 })];
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const) {
    const lb = new LoadBalancer(lbConfig(policy), [...p0, ...p1]);
    const c = counts(lb, 500, policy === 'RING_HASH' || policy === 'MAGLEV');
    assert.equal((c.get('10.0.0.1:80') ?? 0) + (c.get('10.0.0.2:80') ?? 0), 0, policy);
    assert.deepEqual(lb.priorityLoads().healthy, [0, 100]);
  }
  const healthy = new LoadBalancer(lbConfig('ROUND_ROBIN'), [host(1), host(2), ...p1]);
  assert.deepEqual(healthy.priorityLoads().healthy, [100, 0]);
});

test('priority: overprovisioning spills load when a level is partly unhealthy (Envoy 1.4 factor)', () => {
  // P0: 1 of 2 healthy → 140 × 1/2 = 70%; P1 takes the remaining 30%.
  const hosts = [host(1), host(2, { health: 'unhealthy' }), host(3, { priority: 1 })];
  const lb = new LoadBalancer(lbConfig('ROUND_ROBIN'), hosts);
  assert.deepEqual(lb.priorityLoads().healthy, [70, 30]);
  const c = counts(lb, 20000);
  assertShares(c, { '10.0.0.1:80': 0.7, '10.0.0.3:80': 0.3 }, 20000, 0.02);
  assert.equal(c.get('10.0.0.2:80'), undefined);
});

test('panic: every host unhealthy → route to all hosts; no hosts → undefined', () => {
  const lb = new LoadBalancer(lbConfig('ROUND_ROBIN'), [host(1, { health: 'unhealthy' }), host(2, { health: 'unhealthy' })]);
  assert.equal(counts(lb, 10).size, 2);
  assert.deepEqual(lb.priorityLoads().panic, [true]);
  assert.equal(new LoadBalancer(lbConfig('ROUND_ROBIN'), []).chooseHost({ hashKey: undefined }), undefined);
});

test('degraded hosts are used only when healthy ones do not cover the load', () => {
  const lb = new LoadBalancer(lbConfig('ROUND_ROBIN'), [host(1), host(2), host(3, { health: 'degraded' })]);
  // 140 × 2/3 = 93% healthy, 140 × 1/3 = 46 → 7% degraded.
  assert.deepEqual(lb.priorityLoads(), { healthy: [93], degraded: [7], panic: [false] });
});

test('excludeHosts: every policy avoids excluded hosts while others remain', () => {
  const hosts = [host(1), host(2), host(3)];
  const exclude = new Set(['10.0.0.1:80', '10.0.0.2:80']);
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const) {
    const sel = createSelector(lbConfig(policy), hosts);
    for (let i = 0; i < 100; i++) assert.equal(sel.pick({ hashKey: xxHash64(`x${i}`), excludeHosts: exclude })!.key, '10.0.0.3:80', policy);
    // Everything excluded: a host is still returned rather than none.
    assert.ok(sel.pick({ hashKey: 1n, excludeHosts: new Set(hosts.map((h) => h.key)) }), policy);
  }
});

test('locality weighted: localities share traffic by load_balancing_weight', () => {
  const mk = (i: number, zone: string, lw: number): Host => ({ ...host(i), locality: { region: 'r', zone, subZone: '' }, localityWeight: lw });
  const lb = new LoadBalancer(lbConfig('ROUND_ROBIN', { localityWeighted: true }), [mk(1, 'a', 1), mk(2, 'b', 3), mk(3, 'b', 3)]);
  const c = counts(lb, 4000);
  assertShares(c, { '10.0.0.1:80': 0.25, '10.0.0.2:80': 0.375, '10.0.0.3:80': 0.375 }, 4000, 0.01);
});
