// The JWT authentication filter behind the real connection manager and router: tokens signed here
// with node:crypto (RS256, PS256, ES256, EdDSA, HS256) by keys the test mints, checked against
// local key sets and a remote one served by a real HTTP server through its cluster; requests from
// undici reach a real upstream, which shows what the filter added and took away.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createHmac, generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';
import { request } from 'undici';
import { startProxy, type Proxy } from '../router/proxy-harness.ts';
import { filtersHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';
import { startHttp1Upstream, type Upstream } from '../../../helpers/upstreams.ts';
import { closedPort } from '../router/upstreams.ts';
import { parseJwtAuthn } from '../../../../src/filters/http/jwt_authn/config.ts';
import { decodeJson } from '../../../../src/config/decode.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const remoteKey = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const HMAC_SECRET = Buffer.from('a shared secret of thirty-two by');

const jwk = (k: KeyObject, kid: string, alg?: string): object => ({ ...k.export({ format: 'jwk' }), kid, ...(alg ? { alg } : {}) });
const jwks = (...keys: object[]): string => JSON.stringify({ keys });

/** A compact JWS, signed with node:crypto directly (not with the filter's code). */
function token(alg: string, key: KeyObject | Buffer, payload: Record<string, unknown>, kid?: string): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64(payload)}`;
  let sig: Buffer;
  if (alg === 'HS256') sig = createHmac('sha256', key as Buffer).update(input).digest();
  else if (alg === 'EdDSA') sig = sign(null, Buffer.from(input), key as KeyObject);
  else if (alg === 'PS256') sig = sign('sha256', Buffer.from(input), { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  else if (alg.startsWith('ES')) sig = sign(alg === 'ES384' ? 'sha384' : 'sha256', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = sign('sha256', Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

const now = (): number => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: 'https://issuer.example', aud: 'api', sub: 'alice', exp: now() + 300, profile: { team: 'blue' }, ...extra });

const JWT = 'envoy.filters.http.jwt_authn';
const JWT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig';

function filterConfig(remotePort: number): Record<string, unknown> {
  return {
    providers: {
      rs: {
        issuer: 'https://issuer.example',
        audiences: ['api'],
        local_jwks: { inline_string: jwks(jwk(rsa.publicKey, 'rs-1', 'RS256'), jwk(rsa.publicKey, 'ps-1', 'PS256')) },
        forward_payload_header: 'x-jwt-payload',
        claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }, { header_name: 'x-team', claim_name: 'profile.team' }],
      },
      ec: { local_jwks: { inline_string: jwks(jwk(ec.publicKey, 'ec-1')) }, from_headers: [{ name: 'x-ec-token', value_prefix: 'Token ' }], forward: true },
      ed: { local_jwks: { inline_string: jwks(jwk(ed.publicKey, 'ed-1')) }, from_params: ['ed_token'] },
      hs: { local_jwks: { inline_string: jwks({ kty: 'oct', k: HMAC_SECRET.toString('base64url'), kid: 'hs-1' }) }, from_cookies: ['session'] },
      remote: { issuer: 'https://remote.example', remote_jwks: { http_uri: { uri: `http://keys.example:${remotePort}/.well-known/jwks.json`, cluster: 'jwks', timeout: '1s' }, cache_duration: '60s' }, from_headers: [{ name: 'x-remote-token' }] },
      dead: { remote_jwks: { http_uri: { uri: 'http://keys.example/jwks', cluster: 'dead', timeout: '1s' } }, from_headers: [{ name: 'x-dead-token' }] },
    },
    rules: [
      { match: { prefix: '/public' } },
      { match: { prefix: '/any' }, requires: { requires_any: { requirements: [{ provider_name: 'ec' }, { provider_name: 'ed' }, { provider_name: 'hs' }] } } },
      { match: { prefix: '/all' }, requires: { requires_all: { requirements: [{ provider_name: 'rs' }, { provider_name: 'ec' }] } } },
      { match: { prefix: '/optional' }, requires: { allow_missing: {} } },
      { match: { prefix: '/loose' }, requires: { allow_missing_or_failed: {} } },
      { match: { prefix: '/other-audience' }, requires: { provider_and_audiences: { provider_name: 'rs', audiences: ['other'] } } },
      { match: { prefix: '/remote' }, requires: { provider_name: 'remote' } },
      { match: { prefix: '/dead' }, requires: { provider_name: 'dead' } },
      { match: { prefix: '/' }, requires: { provider_name: 'rs' } },
    ],
    requirement_map: { 'ec-only': { provider_name: 'ec' } },
    bypass_cors_preflight: true,
  };
}

let upstream: Upstream;
let keyServer: http.Server;
let keyFetches = 0;
let proxy: Proxy;

before(async () => {
  upstream = await startHttp1Upstream();
  keyServer = http.createServer((req, res) => {
    keyFetches++;
    assert.equal(req.url, '/.well-known/jwks.json');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(jwks(jwk(remoteKey.publicKey, 'remote-1', 'ES384')));
  });
  keyServer.listen(0, '127.0.0.1');
  await once(keyServer, 'listening');
  const keyPort = (keyServer.address() as AddressInfo).port;
  const hcm = filtersHcm([{ name: JWT, typed_config: { '@type': JWT_TYPE, ...filterConfig(keyPort) } }], {
    routes: [
      { match: { prefix: '/unchecked' }, route: { cluster: 'up' }, typed_per_filter_config: { [JWT]: { '@type': PER_ROUTE, disabled: true } } },
      { match: { prefix: '/named' }, route: { cluster: 'up' }, typed_per_filter_config: { [JWT]: { '@type': PER_ROUTE, requirement_name: 'ec-only' } } },
      { match: { prefix: '/misnamed' }, route: { cluster: 'up' }, typed_per_filter_config: { [JWT]: { '@type': PER_ROUTE, requirement_name: 'nope' } } },
      { match: { prefix: '/' }, route: { cluster: 'up' } },
    ],
  });
  proxy = await startProxy(hcm, [oneHostCluster('up', upstream.port), oneHostCluster('jwks', keyPort), oneHostCluster('dead', await closedPort())]);
});

after(async () => {
  await proxy?.close();
  await upstream?.close();
  keyServer?.close();
});

async function call(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined>; seen: Record<string, string | string[] | undefined> | undefined }> {
  const before = upstream.seen.length;
  const r = await request(`http://127.0.0.1:${proxy.port}${path}`, { method, headers });
  const body = await r.body.text();
  return { status: r.statusCode, body, headers: r.headers, seen: upstream.seen.length > before ? upstream.seen.at(-1)!.headers : undefined };
}

test('RS256 from Authorization: Bearer: verified, the token taken out, payload and claims forwarded', { timeout: 20_000 }, async () => {
  const payload = claims();
  const r = await call('/orders?x=1', { authorization: `Bearer ${token('RS256', rsa.privateKey, payload, 'rs-1')}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.seen!.authorization, undefined, 'forward: false takes the token out');
  assert.deepEqual(JSON.parse(Buffer.from(String(r.seen!['x-jwt-payload']), 'base64url').toString()), payload);
  assert.equal(r.seen!['x-sub'], 'alice');
  assert.equal(r.seen!['x-team'], 'blue', 'a nested claim');
  const ps = await call('/orders', { authorization: `Bearer ${token('PS256', rsa.privateKey, claims(), 'ps-1')}` });
  assert.equal(ps.status, 200, 'PS256 with the PS256 key');
  assert.equal(proxy.counter('http.ingress_http.jwt_authn.allowed'), 2);
});

test('failures: 401 with the reason and www-authenticate, 403 for audiences; the upstream never sees them', { timeout: 20_000 }, async () => {
  const missing = await call('/orders?q=secret');
  assert.equal(missing.status, 401);
  assert.equal(missing.body, 'Jwt is missing');
  assert.equal(missing.headers['www-authenticate'], `Bearer realm="http://127.0.0.1:${proxy.port}/orders"`);
  const cases: Array<[string, string, number]> = [
    [token('RS256', rsa.privateKey, claims({ exp: now() - 120 }), 'rs-1'), 'Jwt is expired', 401],
    [token('RS256', rsa.privateKey, claims({ nbf: now() + 600 }), 'rs-1'), 'Jwt not yet valid', 401],
    [token('RS256', rsa.privateKey, claims({ aud: ['web', 'mobile'] }), 'rs-1'), 'Audiences in Jwt are not allowed', 403],
    [token('RS256', rsa.privateKey, claims({ iss: 'https://evil.example' }), 'rs-1'), 'Jwt issuer is not configured', 401],
    [token('RS256', otherRsa.privateKey, claims(), 'rs-1'), 'Jwt verification fails', 401],
    [token('ES256', ec.privateKey, claims(), 'rs-1'), "Jwks doesn't have key to match kid or alg from Jwt", 401],
    ['not.a.jwt', 'Jwt header is an invalid Base64url input or an invalid JSON', 401],
    ['abc', 'Jwt is not in the form of Header.Payload.Signature', 401],
  ];
  for (const [tok, reason, status] of cases) {
    const r = await call('/orders', { authorization: `Bearer ${tok}` });
    assert.equal(r.status, status, reason);
    assert.equal(r.body, reason);
    assert.equal(r.headers['www-authenticate'], `Bearer realm="http://127.0.0.1:${proxy.port}/orders", error="invalid_token"`);
    assert.equal(r.seen, undefined);
  }
  // Within the default 60 s of clock skew an expired token still passes.
  assert.equal((await call('/orders', { authorization: `Bearer ${token('RS256', rsa.privateKey, claims({ exp: now() - 10 }), 'rs-1')}` })).status, 200);
  const aud = await call('/other-audience', { authorization: `Bearer ${token('RS256', rsa.privateKey, claims({ aud: 'https://other/' }), 'rs-1')}` });
  assert.equal(aud.status, 200, 'provider_and_audiences replaces the audiences; scheme and trailing slash are ignored');
  assert.ok(proxy.counter('http.ingress_http.jwt_authn.denied') >= 9);
});

test('other algorithms and places: ES256 in a header with a prefix (forwarded), EdDSA in a query parameter, HS256 in a cookie', { timeout: 20_000 }, async () => {
  const ecTok = token('ES256', ec.privateKey, { sub: 'ec' }, 'ec-1');
  const r = await call('/any/1', { 'x-ec-token': `Token ${ecTok}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.seen!['x-ec-token'], `Token ${ecTok}`, 'forward: true keeps it');
  assert.equal((await call(`/any/2?ed_token=${token('EdDSA', ed.privateKey, { sub: 'ed' }, 'ed-1')}`)).status, 200);
  assert.equal((await call('/any/3', { cookie: `theme=dark; session=${token('HS256', HMAC_SECRET, { sub: 'hs' }, 'hs-1')}` })).status, 200);
  const none = await call('/any/4');
  assert.equal(none.body, 'Jwt is missing', 'requires_any: every provider missing');
  const bad = await call('/any/5', { 'x-ec-token': `Token ${token('ES256', ec.privateKey, { exp: now() - 3600 }, 'ec-1')}` });
  assert.equal(bad.body, 'Jwt is expired', 'requires_any: the failure that is not a missing token');
  const both = await call('/all', { authorization: `Bearer ${token('RS256', rsa.privateKey, claims(), 'rs-1')}`, 'x-ec-token': `Token ${ecTok}` });
  assert.equal(both.status, 200);
  assert.equal((await call('/all', { authorization: `Bearer ${token('RS256', rsa.privateKey, claims(), 'rs-1')}` })).body, 'Jwt is missing', 'requires_all: one missing');
});

test('allow_missing, allow_missing_or_failed, rules without a requirement, per-route config, CORS preflights', { timeout: 20_000 }, async () => {
  const good = token('RS256', rsa.privateKey, claims(), 'rs-1');
  const forged = token('RS256', otherRsa.privateKey, claims(), 'rs-1');
  assert.equal((await call('/optional')).status, 200);
  const opt = await call('/optional', { authorization: `Bearer ${good}` });
  assert.equal(opt.seen!['x-sub'], 'alice', 'a valid token still adds its headers');
  assert.equal((await call('/optional', { authorization: `Bearer ${forged}` })).body, 'Jwt verification fails');
  const loose = await call('/loose', { authorization: `Bearer ${forged}` });
  assert.equal(loose.status, 200);
  assert.equal(loose.seen!.authorization, `Bearer ${forged}`, 'a failed token is left where it was');
  assert.equal((await call('/public', { authorization: 'Bearer nonsense' })).status, 200);
  assert.equal((await call('/unchecked')).status, 200, 'PerRouteConfig disabled');
  assert.equal((await call('/named')).body, 'Jwt is missing', 'PerRouteConfig requirement_name');
  assert.equal((await call('/named', { 'x-ec-token': `Token ${token('ES256', ec.privateKey, {}, 'ec-1')}` })).status, 200);
  const misnamed = await call('/misnamed');
  assert.equal(misnamed.status, 403);
  assert.match(misnamed.body, /^Failed JWT authentication: Wrong requirement_name: nope/);
  const preflight = await call('/orders', { origin: 'https://app.example', 'access-control-request-method': 'POST' }, 'OPTIONS');
  assert.equal(preflight.status, 200);
  assert.equal(proxy.counter('http.ingress_http.jwt_authn.cors_preflight_bypassed'), 1);
});

test('remote_jwks: fetched once through its cluster and cached; an unreachable key server fails the request', { timeout: 20_000 }, async () => {
  const tok = (sub: string): string => token('ES384', remoteKey.privateKey, { iss: 'https://remote.example', sub }, 'remote-1');
  const [a, b] = await Promise.all([call('/remote/a', { 'x-remote-token': tok('a') }), call('/remote/b', { 'x-remote-token': tok('b') })]);
  assert.equal(a.status, 200, a.body);
  assert.equal(b.status, 200, b.body);
  assert.equal((await call('/remote/c', { 'x-remote-token': tok('c') })).status, 200);
  assert.equal(keyFetches, 1, 'one fetch for concurrent requests, then the cache');
  assert.equal(proxy.counter('http.ingress_http.jwt_authn.jwks_fetch_success'), 1);
  const dead = await call('/dead', { 'x-dead-token': token('RS256', rsa.privateKey, {}) });
  assert.equal(dead.status, 401);
  assert.equal(dead.body, 'Jwks remote fetch is failed');
  assert.equal(proxy.counter('http.ingress_http.jwt_authn.jwks_fetch_failed'), 1);
});

test('config errors name the field: an unknown provider, an unknown requirement name, bad keys, filter_state_rules', () => {
  const errors = (cfg: Record<string, unknown>): string[] => {
    const msg = decodeJson('envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication', cfg, { path: 'f' });
    assert.ok(msg.ok);
    const r = parseJwtAuthn(msg.value, { path: 'f', clusterNames: new Set(['jwks']) });
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
  };
  const local = { local_jwks: { inline_string: jwks(jwk(rsa.publicKey, 'k')) } };
  assert.deepEqual(errors({ providers: { a: local }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'b' } }] }), ["f.rules[0].requires.provider_name: Required provider ['b'] is not configured."]);
  assert.deepEqual(errors({ providers: { a: local }, rules: [{ match: { prefix: '/' }, requirement_name: 'x' }] }), ['f.rules[0].requirement_name: Wrong requirement_name: x. It should be one of []']);
  assert.deepEqual(errors({ providers: { a: { local_jwks: { inline_string: '{"keys": 3}' } } } }), ['f.providers["a"].local_jwks: invalid JWKS: [keys] in Jwks is not an array']);
  assert.deepEqual(errors({ providers: { a: { remote_jwks: { http_uri: { uri: 'http://k/jwks', cluster: 'nope', timeout: '1s' } } } } }), ['f.providers["a"].remote_jwks.http_uri.cluster: unknown cluster \'nope\'']);
  assert.deepEqual(errors({ filter_state_rules: { name: 'x' } }), ['f.filter_state_rules: requirements chosen by filter state are not supported']);
});

test('payload_in_metadata: the verified payload in dynamic metadata, where RBAC metadata principals and %DYNAMIC_METADATA% read it', { timeout: 20_000 }, async () => {
  const hcm = filtersHcm(
    [
      { name: JWT, typed_config: { '@type': JWT_TYPE, providers: { rs: { issuer: 'https://issuer.example', local_jwks: { inline_string: jwks(jwk(rsa.publicKey, 'rs-1', 'RS256')) }, payload_in_metadata: 'jwt' } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'rs' } }] } },
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: { action: 'ALLOW', policies: { 'blue-team': { permissions: [{ any: true }], principals: [{ metadata: { filter: JWT, path: [{ key: 'jwt' }, { key: 'profile' }, { key: 'team' }], value: { string_match: { exact: 'blue' } } } }] } } },
        },
      },
    ],
    { routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }], response_headers_to_add: [{ header: { key: 'x-jwt-sub', value: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:sub)%' } }] },
    { stat_prefix: 'meta' },
  );
  const p = await startProxy(hcm, [oneHostCluster('up', upstream.port)]);
  try {
    const ok = await request(`http://127.0.0.1:${p.port}/`, { headers: { authorization: `Bearer ${token('RS256', rsa.privateKey, claims({ sub: 'alice' }), 'rs-1')}` } });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['x-jwt-sub'], 'alice');
    await ok.body.dump();
    const red = await request(`http://127.0.0.1:${p.port}/`, { headers: { authorization: `Bearer ${token('RS256', rsa.privateKey, claims({ sub: 'mallory', profile: { team: 'red' } }), 'rs-1')}` } });
    assert.equal(red.statusCode, 403, 'the RBAC metadata principal reads the payload');
    assert.equal(await red.body.text(), 'RBAC: access denied');
  } finally {
    await p.close();
  }
});
