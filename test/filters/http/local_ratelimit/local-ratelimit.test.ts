// envoy.filters.http.local_ratelimit through a real connection manager and router against a real
// upstream, over HTTP/1.1 and HTTP/2: the token rate, x-ratelimit headers, filter_enabled and
// filter_enforced, per-route overrides, descriptors and per-connection buckets — responses and stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, filterHcmYaml, startFilterProxy, type Downstream } from '../../http/router/proxy-harness.ts';

const TIMEOUT = { timeout: 30_000 };
const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/** An HCM with the local rate limit filter (`filter` is its typed_config body, indented YAML) and the router. */
function hcmYaml(filter: string, routes = '- { match: { prefix: / }, route: { cluster: up } }', extra = ''): string {
  return filterHcmYaml({ name: 'envoy.filters.http.local_ratelimit', typeUrl: LRL, filter, routes, extra });
}

/** `/warm` has the filter disabled (a FilterConfig wrapper), everything else goes through it. */
const WARM_ROUTES = `
- match: { prefix: /warm }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.local_ratelimit:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- { match: { prefix: / }, route: { cluster: up } }`;

const ENABLED = `
filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }`;

const setup = startFilterProxy;

async function statuses(c: Client, n: number, path = '/', headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await c.request({ path, headers })).status);
  return out;
}

for (const down of ['h1', 'h2'] as Downstream[]) {
  test(`${down}: 5 tokens per second: 5 × 200 then 429 local_rate_limited (RL), 5 more after one refill`, TIMEOUT, async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'lrl-')), 'access.log');
    const e = await setup(
      hcmYaml(
        `
stat_prefix: http_local_rate_limiter
token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: 1s }
${ENABLED}
response_headers_to_add:
- append_action: OVERWRITE_IF_EXISTS_OR_ADD
  header: { key: x-local-rate-limit, value: 'true' }`,
        WARM_ROUTES,
        `access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${log}
    log_format: { text_format_source: { inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n" } }`,
      ),
    );
    const c = new Client(down, e.proxy.port);
    try {
      // Connect and warm up first, so the six requests below surely fall in one fill interval.
      assert.deepEqual(await statuses(c, 2, '/warm'), [200, 200]);
      const first = await statuses(c, 5);
      const limited = await c.request({ path: '/' });
      assert.deepEqual(first, [200, 200, 200, 200, 200]);
      assert.equal(limited.status, 429);
      assert.equal(limited.body.toString(), 'local_rate_limited');
      assert.equal(limited.headers['x-local-rate-limit'], 'true');
      assert.equal(limited.headers['x-envoy-ratelimited'], 'true');
      assert.equal(e.upstream.seen.length, 7);
      await sleep(1000); // at least one fill (the bucket's interval started with its first token)
      const second = await statuses(c, 6);
      assert.deepEqual(second, [200, 200, 200, 200, 200, 429]);
      const p = 'http_local_rate_limiter.http_local_rate_limit.';
      assert.equal(e.proxy.counter(`${p}enabled`), 12);
      assert.equal(e.proxy.counter(`${p}ok`), 10);
      assert.equal(e.proxy.counter(`${p}rate_limited`), 2);
      assert.equal(e.proxy.counter(`${p}enforced`), 2);
      assert.equal(e.proxy.counter('http.ingress_http.downstream_rq_4xx'), 2);
    } finally {
      c.close();
      await e.close();
    }
    await sleep(50);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.ok(lines.includes('429 RL local_rate_limited'), lines.join('\n'));
  });

  test(`${down}: x-ratelimit-* headers (DRAFT_VERSION_03) on allowed and limited responses`, TIMEOUT, async () => {
    const e = await setup(hcmYaml(`stat_prefix: rl\ntoken_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s }\n${ENABLED}\nenable_x_ratelimit_headers: DRAFT_VERSION_03`));
    const c = new Client(down, e.proxy.port);
    try {
      const rs = [];
      for (let i = 0; i < 4; i++) rs.push(await c.request({ path: '/' }));
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
      assert.deepEqual(rs.map((r) => r.headers['x-ratelimit-limit']), ['3', '3', '3', '3']);
      assert.deepEqual(rs.map((r) => r.headers['x-ratelimit-remaining']), ['2', '1', '0', '0']);
      for (const r of rs) {
        const reset = Number(r.headers['x-ratelimit-reset']);
        assert.ok(reset > 0 && reset <= 60, `reset ${reset}`);
      }
    } finally {
      c.close();
      await e.close();
    }
  });

  test(`${down}: filter_enabled 0% is not counted; filter_enforced 0% counts but passes with request headers added`, TIMEOUT, async () => {
    const off = await setup(hcmYaml(`stat_prefix: off\ntoken_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }`));
    const c1 = new Client(down, off.proxy.port);
    try {
      assert.deepEqual(await statuses(c1, 3), [200, 200, 200]);
      assert.equal(off.proxy.counter('off.http_local_rate_limit.enabled'), 0);
      assert.equal(off.proxy.counter('off.http_local_rate_limit.ok'), 0);
    } finally {
      c1.close();
      await off.close();
    }
    const shadow = await setup(
      hcmYaml(`
stat_prefix: shadow
token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
filter_enabled: { runtime_key: lrl_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
filter_enforced: { runtime_key: lrl_enforced, default_value: { numerator: 0, denominator: HUNDRED } }
request_headers_to_add_when_not_enforced:
- header: { key: x-local-ratelimited, value: 'true' }`),
    );
    const c2 = new Client(down, shadow.proxy.port);
    try {
      assert.deepEqual(await statuses(c2, 3), [200, 200, 200]);
      assert.deepEqual(shadow.upstream.seen.map((s) => s.headers['x-local-ratelimited']), [undefined, 'true', 'true']);
      const p = 'shadow.http_local_rate_limit.';
      assert.equal(shadow.proxy.counter(`${p}enabled`), 3);
      assert.equal(shadow.proxy.counter(`${p}ok`), 1);
      assert.equal(shadow.proxy.counter(`${p}rate_limited`), 2);
      assert.equal(shadow.proxy.counter(`${p}enforced`), 0);
    } finally {
      c2.close();
      await shadow.close();
    }
  });

  test(`${down}: per-route typed_per_filter_config has its own bucket and stats; a disabled FilterConfig turns the filter off`, TIMEOUT, async () => {
    const routes = `
- match: { prefix: /special }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.local_ratelimit:
      "@type": ${LRL}
      stat_prefix: special
      token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
      filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
      filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
      status: { code: ServiceUnavailable }
- match: { prefix: /off }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.local_ratelimit:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- { match: { prefix: / }, route: { cluster: up } }`;
    const e = await setup(hcmYaml(`stat_prefix: global\ntoken_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }\n${ENABLED}`, routes));
    const c = new Client(down, e.proxy.port);
    try {
      assert.deepEqual(await statuses(c, 2, '/special'), [200, 503]);
      assert.deepEqual(await statuses(c, 4, '/off'), [200, 200, 200, 200]);
      assert.deepEqual(await statuses(c, 3, '/other'), [200, 200, 429]);
      assert.equal(e.proxy.counter('special.http_local_rate_limit.ok'), 1);
      assert.equal(e.proxy.counter('special.http_local_rate_limit.enforced'), 1);
      assert.equal(e.proxy.counter('global.http_local_rate_limit.enabled'), 3);
      assert.equal(e.proxy.counter('global.http_local_rate_limit.rate_limited'), 1);
    } finally {
      c.close();
      await e.close();
    }
  });

  test(`${down}: descriptors from route rate_limits (request_headers, generic_key + header_value_match) each have a bucket`, TIMEOUT, async () => {
    const routes = `
- match: { prefix: / }
  route:
    cluster: up
    rate_limits:
    - actions: [{ request_headers: { header_name: x-client, descriptor_key: client_id } }]
    - actions:
      - generic_key: { descriptor_value: writes }
      - header_value_match: { descriptor_value: post, headers: [{ name: ":method", string_match: { exact: POST } }] }`;
    const e = await setup(
      hcmYaml(
        `
stat_prefix: desc
token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
${ENABLED}
descriptors:
- entries: [{ key: client_id, value: foo }]
  token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
- entries: [{ key: generic_key, value: writes }, { key: header_match, value: post }]
  token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }`,
        routes,
      ),
    );
    const c = new Client(down, e.proxy.port);
    try {
      assert.deepEqual(await statuses(c, 2, '/', { 'x-client': 'foo' }), [200, 429]);
      assert.deepEqual(await statuses(c, 3, '/', { 'x-client': 'bar' }), [200, 200, 200]);
      const posts: number[] = [];
      for (let i = 0; i < 3; i++) posts.push((await c.request({ method: 'POST', path: '/', body: Buffer.from('x') })).status);
      assert.deepEqual(posts, [200, 200, 429]);
      assert.deepEqual(await statuses(c, 2), [200, 200]);
      // Allowed requests also took a token from the default bucket (always_consume_default_token_bucket).
      assert.equal(e.proxy.counter('desc.http_local_rate_limit.ok'), 8);
      assert.equal(e.proxy.counter('desc.http_local_rate_limit.rate_limited'), 2);
    } finally {
      c.close();
      await e.close();
    }
  });

  test(`${down}: remote_address descriptor without the default bucket; per-connection buckets`, TIMEOUT, async () => {
    const routes = `
- match: { prefix: / }
  route: { cluster: up, rate_limits: [{ actions: [{ remote_address: {} }] }] }`;
    const e = await setup(
      hcmYaml(
        `
stat_prefix: ra
token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
${ENABLED}
always_consume_default_token_bucket: false
descriptors:
- entries: [{ key: remote_address, value: 127.0.0.1 }]
  token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s }`,
        routes,
      ),
    );
    const c = new Client(down, e.proxy.port);
    try {
      assert.deepEqual(await statuses(c, 4), [200, 200, 200, 429]);
    } finally {
      c.close();
      await e.close();
    }
    const pc = await setup(hcmYaml(`stat_prefix: pc\ntoken_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }\n${ENABLED}\nlocal_rate_limit_per_downstream_connection: true`));
    const a = new Client(down, pc.proxy.port);
    const b = new Client(down, pc.proxy.port);
    try {
      assert.deepEqual(await statuses(a, 2), [200, 429]);
      assert.deepEqual(await statuses(b, 2), [200, 429]);
      assert.equal(pc.proxy.counter('pc.http_local_rate_limit.ok'), 2);
    } finally {
      a.close();
      b.close();
      await pc.close();
    }
  });
}

test('descriptors from the other route actions: destination_cluster, query_parameter_value_match, header_value_match with expect_match false, skip_if_absent; an unsupported action (metadata) drops only its own descriptor', TIMEOUT, async () => {
  const routes = `
- match: { prefix: / }
  route:
    cluster: up
    rate_limits:
    - actions: [{ destination_cluster: {} }, { query_parameter_value_match: { descriptor_value: debug, query_parameters: [{ name: debug, string_match: { exact: "1" } }] } }]
    - actions: [{ header_value_match: { descriptor_value: not-internal, expect_match: false, headers: [{ name: x-internal, present_match: true }] } }]
    - actions: [{ request_headers: { header_name: x-tenant, descriptor_key: tenant, skip_if_absent: true } }, { generic_key: { descriptor_value: tenanted } }]
    - actions: [{ metadata: { descriptor_key: m, metadata_key: { key: k, path: [{ key: p }] } } }]`;
  const e = await setup(
    hcmYaml(
      `
stat_prefix: more
token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
${ENABLED}
always_consume_default_token_bucket: false
descriptors:
- entries: [{ key: destination_cluster, value: up }, { key: query_match, value: debug }]
  token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
- entries: [{ key: header_match, value: not-internal }]
  token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
- entries: [{ key: generic_key, value: tenanted }]
  token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s }
- entries: [{ key: m, value: anything }]
  token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }`,
      routes,
    ),
  );
  const c = new Client('h1', e.proxy.port);
  // x-internal turns the expect_match false descriptor off; x-tenant makes the third descriptor
  // {tenant, generic_key}, which no configured one equals. So each step below reaches one bucket.
  const quiet = { 'x-internal': '1', 'x-tenant': 't1' };
  try {
    // ?debug=1: the {destination_cluster: up, query_match: debug} bucket (1 token).
    assert.deepEqual(await statuses(c, 2, '/?debug=1', quiet), [200, 429]);
    // ?debug=2 fails the query matcher, which drops that descriptor: nothing limits.
    assert.deepEqual(await statuses(c, 3, '/?debug=2', quiet), [200, 200, 200]);
    // Without x-internal: {header_match: not-internal} (2 tokens).
    assert.deepEqual(await statuses(c, 3, '/', { 'x-tenant': 't1' }), [200, 200, 429]);
    // Without x-tenant the request_headers action is skipped, not fatal: {generic_key: tenanted} (3 tokens).
    assert.deepEqual(await statuses(c, 4, '/', { 'x-internal': '1' }), [200, 200, 200, 429]);
    assert.equal(e.proxy.counter('more.http_local_rate_limit.rate_limited'), 3);
  } finally {
    c.close();
    await e.close();
  }
});

test('virtual host rate_limits: used by routes without their own (OVERRIDE), with them under include_vh_rate_limits, never under vh_rate_limits: IGNORE', TIMEOUT, async () => {
  const descriptors = `
descriptors:
- entries: [{ key: generic_key, value: vh }]
  token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }`;
  const routes = `
- match: { prefix: /own }
  route: { cluster: up, rate_limits: [{ actions: [{ generic_key: { descriptor_value: route } }] }] }
- match: { prefix: /include }
  route: { cluster: up, include_vh_rate_limits: true, rate_limits: [{ actions: [{ generic_key: { descriptor_value: route } }] }] }
- match: { prefix: /ignore }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.local_ratelimit:
      "@type": ${LRL}
      stat_prefix: ignore
      token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
      filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
      filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
      always_consume_default_token_bucket: false
      vh_rate_limits: IGNORE
      descriptors:
      - entries: [{ key: generic_key, value: vh }]
        token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
- match: { prefix: / }
  route: { cluster: up }`;
  const e = await setup(
    filterHcmYaml({
      name: 'envoy.filters.http.local_ratelimit',
      typeUrl: LRL,
      filter: `
stat_prefix: vh
token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
${ENABLED}
always_consume_default_token_bucket: false
${descriptors}`,
      routes,
      vhostExtra: 'rate_limits: [{ actions: [{ generic_key: { descriptor_value: vh } }] }]',
    }),
  );
  const c = new Client('h1', e.proxy.port);
  try {
    // The route's own rate_limits override the virtual host's: its {generic_key: route} matches no bucket.
    assert.deepEqual(await statuses(c, 3, '/own'), [200, 200, 200]);
    // A route without rate_limits and one that includes the virtual host's share the {generic_key: vh} bucket (2 tokens).
    assert.deepEqual([...(await statuses(c, 1, '/none')), ...(await statuses(c, 1, '/include')), ...(await statuses(c, 1, '/none')), ...(await statuses(c, 1, '/include'))], [200, 200, 429, 429]);
    // IGNORE: its own 1-token {generic_key: vh} bucket is never reached.
    assert.deepEqual(await statuses(c, 3, '/ignore'), [200, 200, 200]);
    assert.equal(e.proxy.counter('vh.http_local_rate_limit.rate_limited'), 2);
    assert.equal(e.proxy.counter('ignore.http_local_rate_limit.rate_limited'), 0);
  } finally {
    c.close();
    await e.close();
  }
});
