// Request mirroring end to end: the real connection manager and router, HTTP/1.1 and h2c downstreams,
// HTTP/1.1 and h2c shadow clusters. The shadow gets the request (after route mutations and rewrites)
// with `-shadow` on the host and the same body; the main response never waits for or fails with it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { clusterYaml } from './harness.ts';
import { closedPort, readBody, startUpstream, type Req as UpReq, type Res, type TestUpstream } from './upstreams.ts';
import { Client, ROUTER_FILTER, startProxy, type Downstream, type Proxy } from './proxy-harness.ts';

const TIMEOUT = { timeout: 30_000 };
const MiB = 1024 * 1024;

interface Mirrored {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function authorityOf(req: UpReq): string {
  return String(req.headers[':authority'] ?? req.headers.host ?? '');
}

/** The main upstream: answers with what it received. */
function echo(req: UpReq, res: Res): void {
  void readBody(req).then((body) => {
    res.setHeader('x-from', 'main');
    res.end(JSON.stringify({ path: req.url, authority: authorityOf(req), size: body.length, body: body.length < 1024 ? body.toString() : '' }));
  }, () => {}); // the request was reset
}

async function waitUntil(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function hcm(): string {
  return `
stat_prefix: ingress_http
codec_type: AUTO
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
    routes:
    - match: { prefix: /m/ }
      request_headers_to_add: [{ header: { key: x-route-added, value: yes } }]
      route: { cluster: main, prefix_rewrite: /rewritten/, request_mirror_policies: [{ cluster: shadow }] }
    - match: { prefix: /hang }
      route: { cluster: main, timeout: 1s, request_mirror_policies: [{ cluster: hang }] }
    - match: { prefix: /capped }
      route: { cluster: main, timeout: 5s, request_mirror_policies: [{ cluster: capped }] }
    - match: { prefix: /refused }
      route: { cluster: main, request_mirror_policies: [{ cluster: refused }] }
    - match: { prefix: /nohost }
      route: { cluster: main, request_mirror_policies: [{ cluster: empty }, { cluster: ghost }] }
    - match: { prefix: /zero }
      route: { cluster: main, request_mirror_policies: [{ cluster: shadow, runtime_fraction: { default_value: { numerator: 0 } } }] }
    - match: { prefix: /all }
      route: { cluster: main, request_mirror_policies: [{ cluster: shadow, runtime_fraction: { default_value: { numerator: 100 } } }] }
    - match: { prefix: /hdr }
      route: { cluster: main, request_mirror_policies: [{ cluster_header: x-mirror-to }] }
    - match: { prefix: /nosuffix }
      route: { cluster: main, request_mirror_policies: [{ cluster: shadow, disable_shadow_host_suffix_append: true }] }
    - match: { prefix: /slow }
      route: { cluster: main, request_mirror_policies: [{ cluster: slow }] }
  - name: mirrored-vhost
    domains: ["vhost.example"]
    request_mirror_policies: [{ cluster: shadow }]
    routes:
    - { match: { prefix: / }, route: { cluster: main } }
${ROUTER_FILTER}`;
}

const EMPTY_CLUSTER = `
name: empty
connect_timeout: 1s
load_assignment: { cluster_name: empty }`;

interface Env {
  readonly proxy: Proxy;
  readonly client: Client;
  readonly down: Downstream;
  readonly mirrored: Mirrored[];
  /** Requests the hanging shadow received (never answered). */
  readonly hung: UpReq[];
  /** Requests the slow shadow received (never read). */
  readonly slow: UpReq[];
  /** Host headers for this downstream: `host` on HTTP/1.1, `:authority` on HTTP/2. */
  host(authority: string): Record<string, string>;
  close(): Promise<void>;
}

async function setup(down: Downstream, shadowProto: 'http1' | 'http2'): Promise<Env> {
  const mainProto = shadowProto === 'http1' ? 'http2' : 'http1';
  const mirrored: Mirrored[] = [];
  const hung: UpReq[] = [];
  const slow: UpReq[] = [];
  const ups: TestUpstream[] = [
    await startUpstream(mainProto, echo),
    await startUpstream(shadowProto, (req, res) => {
      void readBody(req).then((body) => {
        mirrored.push({ method: req.method ?? '', path: req.url ?? '', authority: authorityOf(req), headers: req.headers, body });
        res.statusCode = 201;
        res.end('ignored by the proxy');
      }, () => {});
    }),
    await startUpstream(shadowProto, (req) => void hung.push(req)),
    await startUpstream(shadowProto, (req) => {
      req.pause();
      slow.push(req);
    }),
  ];
  const [main, shadow, hang, slowUp] = ups as [TestUpstream, TestUpstream, TestUpstream, TestUpstream];
  const h2 = shadowProto === 'http2';
  const proxy = await startProxy(hcm(), [
    clusterYaml('main', main.port, mainProto === 'http2'),
    clusterYaml('shadow', shadow.port, h2),
    clusterYaml('hang', hang.port, h2),
    clusterYaml('slow', slowUp.port, h2),
    clusterYaml('capped', hang.port, h2, 'circuit_breakers: { thresholds: [{ max_requests: 1 }] }'),
    clusterYaml('refused', await closedPort(), h2),
    EMPTY_CLUSTER,
  ]);
  const client = new Client(down, proxy.port);
  return {
    proxy,
    client,
    down,
    mirrored,
    hung,
    slow,
    host: (a): Record<string, string> => (down === 'h1' ? { host: a } : { ':authority': a }),
    close: async () => {
      client.close();
      await proxy.close();
      for (const u of ups) await u.close();
    },
  };
}

function chunks(total: number, size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(size, total - sent);
      this.push(Buffer.alloc(n, sent / size));
      sent += n;
    },
  });
}

for (const down of ['h1', 'h2'] as Downstream[]) {
  for (const shadowProto of ['http1', 'http2'] as const) {
    const name = `${down} → ${shadowProto} shadow`;

    test(`${name}: GET and streamed POST mirrored with -shadow host, mutations, rewrites and the same body`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        const g = await e.client.request({ path: '/m/get?q=1', headers: e.host('svc.local:8080') });
        assert.equal(g.status, 200);
        assert.equal(g.headers['x-from'], 'main');
        assert.deepEqual(JSON.parse(g.body.toString()), { path: '/rewritten/get?q=1', authority: 'svc.local:8080', size: 0, body: '' });

        const body = Buffer.concat([Buffer.alloc(100_000, 'a'), Buffer.alloc(100_000, 'b'), Buffer.from('end')]);
        const p = await e.client.request({ method: 'POST', path: '/m/post', headers: { ...e.host('svc.local'), 'content-type': 'text/plain' }, body: Readable.from([body.subarray(0, 100_000), body.subarray(100_000, 200_000), body.subarray(200_000)]) });
        assert.equal(p.status, 200);
        assert.equal(JSON.parse(p.body.toString()).size, body.length);

        await waitUntil('two mirrored requests', () => e.mirrored.length === 2);
        const mg = e.mirrored.find((m) => m.method === 'GET')!;
        assert.equal(mg.path, '/rewritten/get?q=1');
        assert.equal(mg.authority, 'svc.local-shadow:8080');
        assert.equal(mg.headers['x-route-added'], 'yes');
        assert.equal(mg.headers['x-envoy-original-path'], '/m/get?q=1');
        assert.equal(mg.body.length, 0);
        const mp = e.mirrored.find((m) => m.method === 'POST')!;
        assert.equal(mp.path, '/rewritten/post');
        assert.equal(mp.authority, 'svc.local-shadow');
        assert.equal(mp.headers['content-type'], 'text/plain');
        assert.ok(mp.body.equals(body), 'the shadow got the same body');

        const pr = e.proxy;
        // The response code is counted at the shadow's response headers, rq_active when its stream ends.
        await waitUntil('shadow responses counted', () => pr.counter('cluster.shadow.upstream_rq_201') === 2 && pr.gauge('cluster.shadow.upstream_rq_active') === 0);
        assert.equal(pr.counter('cluster.shadow.upstream_rq_total'), 2);
        assert.equal(pr.counter('cluster.shadow.upstream_rq_2xx'), 2);
        assert.equal(pr.counter('cluster.shadow.upstream_rq_completed'), 2);
        assert.equal(pr.gauge('cluster.shadow.upstream_rq_active'), 0);
        assert.equal(pr.counter('cluster.main.upstream_rq_total'), 2);
        assert.equal(pr.counter('cluster.main.upstream_rq_200'), 2);
        assert.equal(pr.counter('http.ingress_http.downstream_rq_2xx'), 2);
      } finally {
        await e.close();
      }
    });

    test(`${name}: a hanging shadow neither delays nor fails the main response; it times out on the route timeout`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        const t0 = performance.now();
        const g = await e.client.request({ path: '/hang/get' });
        const p = await e.client.request({ method: 'POST', path: '/hang/post', body: Buffer.from('payload') });
        const latency = performance.now() - t0;
        assert.equal(g.status, 200);
        assert.equal(p.status, 200);
        assert.equal(JSON.parse(p.body.toString()).body, 'payload');
        // The route timeout (and so the shadows' hang) is 1 s; both main responses came well before.
        assert.ok(latency < 600, `main latency ${latency.toFixed(0)} ms`);
        const pr = e.proxy;
        await waitUntil('both shadows at the hanging upstream', () => e.hung.length === 2);
        assert.equal(pr.gauge('cluster.hang.upstream_rq_active'), 2, 'the shadows were still in flight when the main responses ended');
        await waitUntil('shadow timeouts', () => pr.counter('cluster.hang.upstream_rq_timeout') === 2);
        assert.equal(pr.counter('cluster.hang.upstream_rq_total'), 2);
        assert.equal(pr.counter('cluster.hang.upstream_rq_504'), 2);
        assert.equal(pr.counter('cluster.hang.upstream_rq_tx_reset'), 2);
        assert.equal(pr.gauge('cluster.hang.upstream_rq_active'), 0);
        assert.equal(pr.counter('cluster.main.upstream_rq_200'), 2);
        assert.equal(pr.counter('cluster.main.upstream_rq_timeout'), 0);
      } finally {
        await e.close();
      }
    });

    test(`${name}: a shadow cluster's max_requests circuit breaker caps shadows, not the main request`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        const rs = await Promise.all([0, 1, 2].map((i) => e.client.request({ path: `/capped/${i}` })));
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
        const pr = e.proxy;
        assert.equal(pr.counter('cluster.capped.upstream_rq_pending_overflow'), 2);
        assert.equal(pr.counter('cluster.capped.upstream_rq_total'), 1);
        assert.equal(pr.gauge('cluster.capped.upstream_rq_active'), 1, 'the first shadow still hangs');
        assert.equal(pr.counter('cluster.main.upstream_rq_200'), 3);
        assert.equal(pr.counter('cluster.main.upstream_rq_pending_overflow'), 0);
      } finally {
        await e.close();
      }
    });

    test(`${name}: refused, empty or missing shadow clusters are only counted`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        const t0 = performance.now();
        const r = await e.client.request({ method: 'POST', path: '/refused', body: Buffer.from('x') });
        assert.equal(r.status, 200);
        const n = await e.client.request({ path: '/nohost' });
        assert.equal(n.status, 200);
        assert.ok(performance.now() - t0 < 1000);
        const pr = e.proxy;
        await waitUntil('the refused shadow counted', () => pr.counter('cluster.refused.upstream_rq_503') === 1);
        assert.equal(pr.counter('cluster.refused.upstream_rq_total'), 1);
        assert.equal(pr.gauge('cluster.refused.upstream_rq_active'), 0);
        assert.equal(pr.counter('cluster.empty.upstream_cx_none_healthy'), 1);
        assert.equal(pr.counter('cluster.empty.upstream_rq_total'), 0);
        assert.equal(pr.counter('cluster.main.upstream_rq_200'), 2);
        assert.equal(pr.counter('http.ingress_http.downstream_rq_2xx'), 2);
        assert.equal(pr.counter('http.ingress_http.no_cluster'), 0);
      } finally {
        await e.close();
      }
    });

    test(`${name}: runtime_fraction 0% mirrors nothing, 100% mirrors every request`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        for (let i = 0; i < 20; i++) assert.equal((await e.client.request({ path: `/zero/${i}` })).status, 200);
        for (let i = 0; i < 20; i++) assert.equal((await e.client.request({ path: `/all/${i}` })).status, 200);
        await waitUntil('20 mirrored', () => e.proxy.counter('cluster.shadow.upstream_rq_201') === 20);
        assert.equal(e.mirrored.length, 20);
        assert.ok(e.mirrored.every((m) => m.path.startsWith('/all/')));
        assert.equal(e.proxy.counter('cluster.shadow.upstream_rq_total'), 20);
        assert.equal(e.proxy.counter('cluster.main.upstream_rq_total'), 40);
      } finally {
        await e.close();
      }
    });

    test(`${name}: cluster_header, disable_shadow_host_suffix_append and virtual-host policies`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        assert.equal((await e.client.request({ path: '/hdr/1', headers: { ...e.host('a.example'), 'x-mirror-to': 'shadow' } })).status, 200);
        assert.equal((await e.client.request({ path: '/hdr/2', headers: e.host('a.example') })).status, 200); // no header: no shadow
        assert.equal((await e.client.request({ path: '/hdr/3', headers: { ...e.host('a.example'), 'x-mirror-to': 'ghost' } })).status, 200);
        assert.equal((await e.client.request({ path: '/nosuffix', headers: e.host('b.example:81') })).status, 200);
        assert.equal((await e.client.request({ path: '/vh', headers: e.host('vhost.example') })).status, 200);
        await waitUntil('3 mirrored', () => e.proxy.counter('cluster.shadow.upstream_rq_201') === 3);
        const byPath = new Map(e.mirrored.map((m) => [m.path, m.authority]));
        assert.deepEqual(Object.fromEntries(byPath), { '/hdr/1': 'a.example-shadow', '/nosuffix': 'b.example:81', '/vh': 'vhost.example-shadow' });
        assert.equal(e.proxy.counter('cluster.main.upstream_rq_200'), 5);
      } finally {
        await e.close();
      }
    });

    test(`${name}: a shadow that cannot keep up with the body is dropped, never pausing the main request`, TIMEOUT, async () => {
      const e = await setup(down, shadowProto);
      try {
        const size = 12 * MiB;
        const r = await e.client.request({ method: 'POST', path: '/slow', body: chunks(size, 64 * 1024) });
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body.toString()).size, size);
        const pr = e.proxy;
        assert.equal(pr.counter('cluster.main.retry_or_shadow_abandoned'), 1);
        assert.equal(pr.counter('cluster.slow.upstream_rq_total'), 1);
        assert.equal(pr.counter('cluster.slow.upstream_rq_tx_reset'), 1);
        assert.equal(pr.gauge('cluster.slow.upstream_rq_active'), 0);
        assert.equal(pr.counter('cluster.main.upstream_rq_200'), 1);
      } finally {
        await e.close();
      }
    });
  }
}

for (const down of ['h1', 'h2'] as Downstream[]) {
  test(`${down}: a downstream reset before the request body ended resets the shadow too`, TIMEOUT, async () => {
    const e = await setup(down, 'http1');
    const pr = e.proxy;
    let abort: () => void;
    if (down === 'h1') {
      const sock = net.connect(pr.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write('POST /m/x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789');
      abort = () => sock.destroy();
    } else {
      const session = http2.connect(`http://127.0.0.1:${pr.port}`);
      session.on('error', () => {});
      const stream = session.request({ ':method': 'POST', ':path': '/m/x' });
      stream.on('error', () => {});
      stream.write('0123456789');
      abort = () => session.destroy();
    }
    try {
      await waitUntil('the shadow started', () => pr.gauge('cluster.shadow.upstream_rq_active') === 1 && pr.gauge('cluster.main.upstream_rq_active') === 1);
      abort();
      await waitUntil('the shadow reset', () => pr.gauge('cluster.shadow.upstream_rq_active') === 0);
      assert.equal(pr.counter('cluster.shadow.upstream_rq_total'), 1);
      assert.equal(pr.counter('cluster.shadow.upstream_rq_tx_reset'), 1);
      assert.equal(e.mirrored.length, 0);
    } finally {
      await e.close();
    }
  });
}
