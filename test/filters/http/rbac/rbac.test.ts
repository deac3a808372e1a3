// envoy.filters.http.rbac through a real connection manager and router against a real upstream,
// over HTTP/1.1 (undici) and HTTP/2 (node:http2): allow/deny by path, header, source IP and
// x-forwarded-for address; ALLOW, DENY and LOG actions; shadow rules; per-route RBACPerRoute
// overrides and disabling; the 403 reply, its response details in the access log, and the counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { Client as H2Client, filterHcmYaml, startFilterProxy, type FilterProxy } from '../router/proxy-harness.ts';
import { parseHttpRbac, parseHttpRbacPerRoute } from '../../../../src/filters/http/rbac/index.ts';
import { decodeJson } from '../../../../src/config/decode.ts';
import { parse } from 'yaml';

const TIMEOUT = { timeout: 30_000 };
const RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

/** An HCM (stat_prefix ingress_http) with the RBAC filter (`filter` is its typed_config body), the router, and an access log. */
function hcmYaml(filter: string, routes: string, log: string, extra = ''): string {
  const accessLog = `
access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${log}
    log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n" } }`;
  return filterHcmYaml({ name: 'envoy.filters.http.rbac', typeUrl: RBAC, filter, routes, extra: `${extra}\n${accessLog}` });
}

/** ALLOW: /public for anyone, anything for x-role: admin, /local from loopback; shadow DENY of /public/api. */
const FILTER = `
rules:
  action: ALLOW
  policies:
    public:
      permissions: [ { url_path: { path: { prefix: /public } } } ]
      principals: [ { any: true } ]
    admin:
      permissions: [ { any: true } ]
      principals: [ { header: { name: x-role, string_match: { exact: admin } } } ]
    local:
      permissions: [ { url_path: { path: { prefix: /local } } } ]
      principals: [ { direct_remote_ip: { address_prefix: 127.0.0.0, prefix_len: 8 } } ]
shadow_rules:
  action: DENY
  policies:
    shadow-api:
      permissions: [ { url_path: { path: { prefix: /public/api } } } ]
      principals: [ { any: true } ]
shadow_rules_stat_prefix: shadow_
track_per_rule_stats: true`;

const ROUTES = `
- match: { prefix: /open }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.rbac: { "@type": ${PER_ROUTE} }
- match: { prefix: /disabled }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.rbac:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- match: { prefix: /override }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.rbac:
      "@type": ${PER_ROUTE}
      rbac:
        rules:
          action: DENY
          policies:
            block header:
              permissions: [ { header: { name: x-block, present_match: true } } ]
              principals: [ { any: true } ]
            loopback-admin:
              permissions: [ { url_path: { path: { prefix: /override/admin } } } ]
              principals: [ { direct_remote_ip: { address_prefix: 127.0.0.1, prefix_len: 32 } } ]
- match: { prefix: /logged }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.rbac:
      "@type": ${PER_ROUTE}
      rbac:
        rules:
          action: LOG
          policies:
            log-debug:
              permissions: [ { header: { name: x-debug, present_match: true } } ]
              principals: [ { any: true } ]
- { match: { prefix: / }, route: { cluster: up } }`;

interface Res {
  status: number;
  body: string;
  contentType: string | undefined;
}

type Send = (path: string, headers?: Record<string, string>) => Promise<Res>;

/** A client per protocol: undici for HTTP/1.1, node:http2 (h2c) for HTTP/2. */
function client(kind: 'h1' | 'h2', port: number): { send: Send; close(): Promise<void> } {
  if (kind === 'h1') {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    return {
      send: async (path, headers = {}) => {
        const r = await pool.request({ path, method: 'GET', headers });
        const ct = r.headers['content-type'];
        return { status: r.statusCode, body: await r.body.text(), contentType: Array.isArray(ct) ? ct[0] : ct };
      },
      close: () => pool.close(),
    };
  }
  const c = new H2Client('h2', port);
  return {
    send: async (path, headers = {}) => {
      const r = await c.request({ path, headers });
      const ct = r.headers['content-type'];
      return { status: r.status, body: r.body.toString(), contentType: Array.isArray(ct) ? ct[0] : ct };
    },
    close: async () => c.close(),
  };
}

async function setup(filter: string, routes: string, extra = ''): Promise<FilterProxy & { log: string }> {
  const log = join(mkdtempSync(join(tmpdir(), 'rbac-')), 'access.log');
  return { ...(await startFilterProxy(hcmYaml(filter, routes, log, extra))), log };
}

async function accessLog(path: string): Promise<string[]> {
  for (let i = 0; i < 20; i++) {
    try {
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      if (lines.length > 0 && lines[0] !== '') return lines;
    } catch {
      // not written yet
    }
    await sleep(50);
  }
  return [];
}

for (const kind of ['h1', 'h2'] as const) {
  test(`${kind}: ALLOW by path, header and source IP; everything else is 403 "RBAC: access denied"; shadow rules only count`, TIMEOUT, async () => {
    const e = await setup(FILTER, ROUTES);
    const c = client(kind, e.proxy.port);
    try {
      const ok1 = await c.send('/public/page?x=1');
      assert.equal(ok1.status, 200);
      assert.equal((await c.send('/public/api/v1')).status, 200, 'the shadow DENY does not enforce');
      assert.equal((await c.send('/local/x')).status, 200, 'loopback client');
      assert.equal((await c.send('/private', { 'x-role': 'admin' })).status, 200);
      const denied = await c.send('/private');
      assert.equal(denied.status, 403);
      assert.equal(denied.body, 'RBAC: access denied');
      assert.equal(denied.contentType, 'text/plain');
      assert.equal((await c.send('/private', { 'x-role': 'guest' })).status, 403);
      // Only the four allowed requests reached the upstream.
      assert.deepEqual(e.upstream.seen.map((s) => s.path), ['/public/page?x=1', '/public/api/v1', '/local/x', '/private']);
      const p = 'http.ingress_http.rbac.';
      assert.equal(e.proxy.counter(`${p}allowed`), 4);
      assert.equal(e.proxy.counter(`${p}denied`), 2);
      // shadow_rules_stat_prefix `shadow_` is joined with a dot, as Envoy's statPrefixJoin does.
      assert.equal(e.proxy.counter(`${p}shadow_.shadow_denied`), 1);
      assert.equal(e.proxy.counter(`${p}shadow_.shadow_allowed`), 5);
      // track_per_rule_stats: the policy that decided, first in name order.
      assert.equal(e.proxy.counter(`${p}policy.public.allowed`), 2);
      assert.equal(e.proxy.counter(`${p}policy.local.allowed`), 1);
      assert.equal(e.proxy.counter(`${p}policy.admin.allowed`), 1);
      assert.equal(e.proxy.counter(`${p}shadow_.policy.shadow-api.shadow_denied`), 1);
      assert.equal(e.proxy.counter('http.ingress_http.downstream_rq_4xx'), 2);
    } finally {
      await c.close();
      await e.close();
    }
    const lines = await accessLog(e.log);
    // Envoy sets no response flag for RBAC: the details name the (absent) matched policy.
    assert.ok(lines.includes('/private 403 - rbac_access_denied_matched_policy[none]'), lines.join('\n'));
    assert.ok(lines.includes('/public/page?x=1 200 - via_upstream'), lines.join('\n'));
  });

  test(`${kind}: RBACPerRoute replaces the rules (DENY, LOG), an RBACPerRoute without rbac and a disabled FilterConfig turn RBAC off`, TIMEOUT, async () => {
    const e = await setup(FILTER, ROUTES);
    const c = client(kind, e.proxy.port);
    try {
      // The filter's ALLOW rules would deny these; the routes say otherwise.
      assert.equal((await c.send('/open/x')).status, 200);
      assert.equal((await c.send('/disabled/x')).status, 200);
      // DENY override: denied only when a policy matches.
      assert.equal((await c.send('/override/x')).status, 200);
      const blocked = await c.send('/override/x', { 'x-block': '1' });
      assert.equal(blocked.status, 403);
      assert.equal(blocked.body, 'RBAC: access denied');
      assert.equal((await c.send('/override/admin')).status, 403, 'DENY by source IP');
      // LOG override: always allowed, whether a policy matches or not.
      assert.equal((await c.send('/logged', { 'x-debug': '1' })).status, 200);
      assert.equal((await c.send('/logged')).status, 200);
      const p = 'http.ingress_http.rbac.';
      // /open and /disabled run no engine; /override/x, and both /logged count as allowed.
      assert.equal(e.proxy.counter(`${p}allowed`), 3);
      assert.equal(e.proxy.counter(`${p}denied`), 2);
      // Route overrides without shadow_rules run no shadow engine.
      assert.equal(e.proxy.counter(`${p}shadow_.shadow_allowed`) + e.proxy.counter(`${p}shadow_.shadow_denied`), 0);
      assert.equal(e.upstream.seen.length, 5);
    } finally {
      await c.close();
      await e.close();
    }
    const lines = await accessLog(e.log);
    // Whitespace in a policy name becomes `_` in the details.
    assert.ok(lines.includes('/override/x 403 - rbac_access_denied_matched_policy[block_header]'), lines.join('\n'));
    assert.ok(lines.includes('/override/admin 403 - rbac_access_denied_matched_policy[loopback-admin]'), lines.join('\n'));
  });
}

test('h1: DENY by the x-forwarded-for client address (remote_ip), rules_stat_prefix, no rules = no enforcement', TIMEOUT, async () => {
  const filter = `
rules:
  action: DENY
  policies:
    blocked-net:
      permissions: [ { any: true } ]
      principals: [ { remote_ip: { address_prefix: 203.0.113.0, prefix_len: 24 } } ]
rules_stat_prefix: "edge_"`;
  const e = await setup(filter, '- { match: { prefix: / }, route: { cluster: up } }');
  const c = client('h1', e.proxy.port);
  try {
    assert.equal((await c.send('/', { 'x-forwarded-for': '203.0.113.7' })).status, 403);
    assert.equal((await c.send('/', { 'x-forwarded-for': '198.51.100.7' })).status, 200);
    assert.equal((await c.send('/')).status, 200);
    assert.equal(e.proxy.counter('http.ingress_http.rbac.edge_.denied'), 1);
    assert.equal(e.proxy.counter('http.ingress_http.rbac.edge_.allowed'), 2);
  } finally {
    await c.close();
    await e.close();
  }
  const none = await setup('shadow_rules: { action: ALLOW }', '- { match: { prefix: / }, route: { cluster: up } }');
  const c2 = client('h1', none.proxy.port);
  try {
    assert.equal((await c2.send('/anything')).status, 200);
    assert.equal(none.proxy.counter('http.ingress_http.rbac.allowed'), 0);
    assert.equal(none.proxy.counter('http.ingress_http.rbac.shadow_denied'), 1);
  } finally {
    await c2.close();
    await none.close();
  }
});

test('h1: a route override legate cannot evaluate (uri_template rule) denies its requests: access control fails closed', TIMEOUT, async () => {
  const routes = `
- match: { prefix: /meta }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.rbac:
      "@type": ${PER_ROUTE}
      rbac:
        rules:
          action: ALLOW
          policies:
            by-template:
              permissions: [ { uri_template: { name: u, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } } ]
              principals: [ { any: true } ]
- { match: { prefix: / }, route: { cluster: up } }`;
  const e = await setup('rules: { action: DENY }', routes);
  const c = client('h1', e.proxy.port);
  try {
    assert.equal((await c.send('/meta')).status, 403);
    assert.equal((await c.send('/meta/again')).status, 403);
    assert.equal((await c.send('/other')).status, 200, 'the filter config (DENY without policies) allows');
    assert.equal(e.proxy.counter('http.ingress_http.rbac.denied'), 2);
    assert.equal(e.proxy.counter('http.ingress_http.rbac.allowed'), 1);
  } finally {
    await c.close();
    await e.close();
  }
});

test('config: matcher forms and unsupported rules are errors naming the field; RBACPerRoute without rbac has no engines', () => {
  const parseYaml = (type: string, y: string): unknown => {
    const d = decodeJson<unknown>(type, parse(y));
    if (!d.ok) throw new Error(JSON.stringify(d.errors));
    return d.value;
  };
  const t = 'envoy.extensions.filters.http.rbac.v3.RBAC';
  const good = parseHttpRbac(parseYaml(t, '{ rules: { action: DENY }, shadow_rules_stat_prefix: s_, rules_stat_prefix: r_ }'), { path: 'f.typed_config' });
  assert.ok(good.ok);
  assert.equal(good.value.engine?.action, 'DENY');
  assert.equal(good.value.shadowEngine, undefined);
  assert.equal(good.value.rulesStatPrefix, 'r_');
  assert.ok(Object.isFrozen(good.value));
  const matcher = parseHttpRbac(parseYaml(t, '{ matcher: { on_no_match: { action: { name: a, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } } } }'), { path: 'f.typed_config' });
  assert.ok(!matcher.ok);
  assert.equal(matcher.errors[0]!.path, 'f.typed_config.matcher');
  assert.match(matcher.errors[0]!.reason, /not supported/);
  const meta = parseHttpRbac(
    parseYaml(t, '{ rules: { policies: { p: { permissions: [ { uri_template: { name: u, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } } ], principals: [ { any: true } ] } } } }'),
    { path: 'f' },
  );
  assert.ok(!meta.ok);
  assert.equal(meta.errors[0]!.path, 'f.rules.policies["p"].permissions[0].uri_template');
  const empty = parseHttpRbacPerRoute(parseYaml('envoy.extensions.filters.http.rbac.v3.RBACPerRoute', '{}'), 'r');
  assert.ok(empty.ok);
  assert.equal(empty.value.engine, undefined);
  assert.equal(empty.value.shadowEngine, undefined);
  const wrongType = parseHttpRbacPerRoute(parseYaml(t, '{ rules: { action: DENY } }'), 'r');
  assert.ok(!wrongType.ok);
});
