// header_to_metadata behind the real connection manager and router: request headers and cookies
// into dynamic metadata (strings, numbers, base64, rewritten, fixed values, missing-header defaults,
// removal), read by an RBAC metadata principal and by the access log, and a response header's value
// into metadata after the upstream answered; a route's own Config replaces the filter's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startProxy } from '../router/proxy-harness.ts';
import { filtersHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';

const H2M = 'envoy.filters.http.header_to_metadata';
const H2M_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config';

test('headers and cookies into dynamic metadata, for RBAC and the access log; a response header too; per-route Config', { timeout: 20_000 }, async () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const up = http.createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('x-app-version', 'v7');
    res.end('ok');
  });
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  const log = join(mkdtempSync(join(tmpdir(), 'legate-h2m-')), 'access.log');
  const ns = (key: string): string => `%DYNAMIC_METADATA(${H2M}:${key})%`;
  const hcm = filtersHcm(
    [
      {
        name: H2M,
        typed_config: {
          '@type': H2M_TYPE,
          request_rules: [
            { header: 'x-tenant', on_header_present: { key: 'tenant' }, remove: true },
            { header: 'x-level', on_header_present: { key: 'level', type: 'NUMBER' } },
            { header: 'x-plan-b64', on_header_present: { key: 'plan', encode: 'BASE64' } },
            { cookie: 'user', on_header_present: { key: 'user', regex_value_rewrite: { pattern: { regex: '^u-(.*)$' }, substitution: '\\1' } } },
            { header: 'x-region', on_header_present: { key: 'region' }, on_header_missing: { key: 'region', value: 'default-region' } },
          ],
          response_rules: [{ header: 'x-app-version', on_header_present: { key: 'version' } }],
        },
      },
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: { action: 'DENY', policies: { 'no-banned-tenant': { permissions: [{ any: true }], principals: [{ metadata: { filter: H2M, path: [{ key: 'tenant' }], value: { string_match: { exact: 'banned' } } } }] } } },
        },
      },
    ],
    {
      routes: [
        {
          match: { prefix: '/other' },
          route: { cluster: 'up' },
          typed_per_filter_config: { [H2M]: { '@type': H2M_TYPE, request_rules: [{ header: 'x-tenant', on_header_present: { metadata_namespace: 'custom', key: 'route' } }] } },
        },
        { match: { prefix: '/' }, route: { cluster: 'up' } },
      ],
    },
    {
      stat_prefix: 'h2m',
      access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: log, log_format: { text_format_source: { inline_string: `${ns('tenant')} ${ns('level')} ${ns('plan')} ${ns('user')} ${ns('region')} ${ns('version')} %DYNAMIC_METADATA(custom:route)%\n` } } } }],
    },
  );
  const proxy = await startProxy(hcm, [oneHostCluster('up', (up.address() as AddressInfo).port)]);
  try {
    const get = async (path: string, headers: Record<string, string>): Promise<number> => {
      const r = await request(`http://127.0.0.1:${proxy.port}${path}`, { headers });
      await r.body.dump();
      return r.statusCode;
    };
    assert.equal(await get('/a', { 'x-tenant': 'acme', 'x-level': '3', 'x-plan-b64': Buffer.from('gold').toString('base64'), cookie: 'theme=dark; user=u-alice', 'x-region': 'eu' }), 200);
    assert.equal(seen.at(-1)!['x-tenant'], undefined, 'remove: true takes the header out');
    assert.equal(seen.at(-1)!['x-level'], '3');
    assert.equal(await get('/b', { 'x-tenant': 'banned' }), 403, 'RBAC reads the metadata');
    assert.equal(await get('/c', { 'x-level': 'not a number' }), 200);
    assert.equal(await get('/other/d', { 'x-tenant': 'acme' }), 200);
  } finally {
    await proxy.close();
    up.close();
  }
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.deepEqual(lines, [
    'acme 3 gold alice eu v7 -',
    'banned - - - default-region - -',
    '- - - - default-region v7 -',
    '- - - - - - acme',
  ]);
});
