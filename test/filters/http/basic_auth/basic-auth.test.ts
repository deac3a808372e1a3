// The basic auth filter behind the real connection manager and router: htpasswd {SHA} users
// (hashed here with node:crypto), a route with its own users, the user name forwarded, and Envoy's
// 401 replies for each failure; config errors for other htpasswd formats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { startProxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';
import { startHttp1Upstream } from '../../../helpers/upstreams.ts';
import { parseBasicAuth } from '../../../../src/filters/http/basic_auth/config.ts';

const sha = (password: string): string => `{SHA}${createHash('sha1').update(password).digest('base64')}`;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuth';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuthPerRoute';

test('htpasswd users, the forwarded user name, a route’s own users, and 401 with the reason and a Basic challenge', { timeout: 20_000 }, async () => {
  const up = await startHttp1Upstream();
  const proxy = await startProxy(
    filterHcm(
      { name: 'envoy.filters.http.basic_auth', typed_config: { '@type': TYPE, users: { inline_string: `alice:${sha('wonderland')}\nbob:${sha('builder')}\n` }, forward_username_header: 'x-user' } },
      { routes: [{ match: { prefix: '/admin' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.basic_auth': { '@type': PER_ROUTE, users: { inline_string: `root:${sha('toor')}` } } } }, { match: { prefix: '/' }, route: { cluster: 'up' } }] },
    ),
    [oneHostCluster('up', up.port)],
  );
  const get = async (path: string, authorization?: string): Promise<{ status: number; body: string; challenge: unknown }> => {
    const r = await request(`http://127.0.0.1:${proxy.port}${path}`, { headers: authorization ? { authorization } : {} });
    return { status: r.statusCode, body: await r.body.text(), challenge: r.headers['www-authenticate'] };
  };
  try {
    const ok = await get('/shop?x=1', basic('alice', 'wonderland'));
    assert.equal(ok.status, 200);
    assert.equal(up.seen.at(-1)!.headers['x-user'], 'alice');
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'User authentication failed. Missing username and password.'],
      ['Bearer abc', "User authentication failed. Expected 'Basic' authentication scheme."],
      [`Basic ${Buffer.from('no-colon').toString('base64')}`, 'User authentication failed. Invalid basic credential format.'],
      [basic('alice', 'wrong'), 'User authentication failed. Invalid username/password combination.'],
      [basic('mallory', 'wonderland'), 'User authentication failed. Invalid username/password combination.'],
    ];
    for (const [auth, body] of cases) {
      const r = await get('/shop?x=1', auth);
      assert.equal(r.status, 401, body);
      assert.equal(r.body, body);
      assert.equal(r.challenge, `Basic realm="http://127.0.0.1:${proxy.port}/shop"`);
    }
    assert.equal((await get('/admin', basic('alice', 'wonderland'))).status, 401, 'the route’s users replace the filter’s');
    assert.equal((await get('/admin', basic('root', 'toor'))).status, 200);
    assert.equal(proxy.counter('http.ingress_http.basic_auth.allowed'), 2);
    assert.equal(proxy.counter('http.ingress_http.basic_auth.denied'), 6);
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('htpasswd formats other than {SHA}, empty fields and duplicate users are config errors', () => {
  const err = (users: string): string => {
    const r = parseBasicAuth({ users: { specifier: 'inline_string', inline_string: users } }, { path: 'f' });
    return r.ok ? '' : `${r.errors[0]!.path}: ${r.errors[0]!.reason}`;
  };
  assert.equal(err(`a:${sha('x')}`), '');
  assert.equal(err('a:$apr1$salt$hash'), 'f.users: basic auth: unsupported htpasswd format: please use {SHA}');
  assert.equal(err(':{SHA}abc'), 'f.users: basic auth: invalid htpasswd format, username or password is empty');
  assert.equal(err(`a:${sha('x')}\na:${sha('y')}`), 'f.users: basic auth: duplicate users');
});
