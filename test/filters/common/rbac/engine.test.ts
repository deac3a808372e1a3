// The shared RBAC engine: every principal and permission kind against synthetic requests and
// connections (including `authenticated` against TlsConnectionInfo objects: URI SAN, DNS SAN and
// subject fallbacks, plaintext), the ALLOW / DENY / LOG actions, policy order, config errors naming
// their field, Envoy's response details and counter names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { checkEnforced, checkShadow, compileRbac, NO_HEADERS, rbacOutcome, RbacStats, responseDetail, statPrefixJoin, type RbacEngine } from '../../../../src/filters/common/rbac/index.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { newStreamInfo, type StreamInfo } from '../../../../src/proxy/http/stream-info.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import type { TlsConnectionInfo } from '../../../../src/proxy/tls/types.ts';
import type { RBAC__Output } from '../../../../src/generated/envoy/config/rbac/v3/RBAC.ts';

const RBAC_TYPE = 'envoy.config.rbac.v3.RBAC';

function decode(yaml: string, skipValidation = false): RBAC__Output {
  const d = decodeJson<RBAC__Output>(RBAC_TYPE, parse(yaml), { skipValidation });
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  return d.value;
}

function engine(yaml: string): RbacEngine {
  const r = compileRbac(decode(yaml), 'rules');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** One policy `p` with the given permission and principal (YAML flow mappings). */
function single(permission: string, principal: string, action = 'ALLOW'): RbacEngine {
  return engine(`{ action: ${action}, policies: { p: { permissions: [${permission}], principals: [${principal}] } } }`);
}

function tls(o: Partial<TlsConnectionInfo>): TlsConnectionInfo {
  return {
    version: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256',
    alpn: undefined,
    sni: undefined,
    sessionReused: false,
    peerCertificatePresented: true,
    peerCertificateValidated: true,
    peerUriSans: [],
    peerDnsSans: [],
    peerIpSans: [],
    peerEmailSans: [],
    peerSubject: '',
    peerIssuer: 'CN=ca',
    peerSerial: '01',
    peerFingerprintSha256: '',
    peerCertificatePem: '',
    peerChainPem: '',
    peerValidFrom: undefined,
    peerValidTo: undefined,
    localUriSans: [],
    localDnsSans: [],
    localSubject: '',
    ...o,
  };
}

interface Conn {
  remote?: string;
  /** The client address after x-forwarded-for (downstreamRemote), when it differs from the peer. */
  xffRemote?: string;
  local?: string;
  localPort?: number;
  sni?: string;
  tls?: TlsConnectionInfo;
}

function info(c: Conn = {}): StreamInfo {
  const i = newStreamInfo({
    downstreamRemote: { address: c.remote ?? '10.1.2.3', port: 40000 },
    downstreamLocal: { address: c.local ?? '192.168.0.1', port: c.localPort ?? 8080 },
    connectionId: 1,
    ...(c.sni !== undefined ? { requestedServerName: c.sni } : {}),
    ...(c.tls ? { downstreamTls: c.tls } : {}),
  });
  if (c.xffRemote) i.downstreamRemote = { address: c.xffRemote, port: 0 };
  return i;
}

function req(path = '/', extra: Record<string, string> = {}): HeaderMap {
  return HeaderMap.fromPairs([[':method', 'GET'], [':path', path], [':authority', 'example.com'], ...Object.entries(extra)]);
}

const allowed = (e: RbacEngine, headers: HeaderMap, i: StreamInfo): boolean => e.evaluate({ headers, info: i }).allowed;

test('principals: any, direct_remote_ip, deprecated source_ip, remote_ip (after XFF)', () => {
  const any = single('{ any: true }', '{ any: true }');
  assert.equal(allowed(any, req(), info()), true);
  const direct = single('{ any: true }', '{ direct_remote_ip: { address_prefix: 10.1.0.0, prefix_len: 16 } }');
  assert.equal(allowed(direct, req(), info()), true);
  assert.equal(allowed(direct, req(), info({ remote: '10.2.0.1' })), false);
  // The socket peer decides, whatever x-forwarded-for says.
  assert.equal(allowed(direct, req(), info({ remote: '10.1.9.9', xffRemote: '8.8.8.8' })), true);
  const source = single('{ any: true }', '{ source_ip: { address_prefix: 10.1.2.3, prefix_len: 32 } }');
  assert.equal(allowed(source, req(), info()), true);
  assert.equal(allowed(source, req(), info({ remote: '10.1.2.4' })), false);
  const remote = single('{ any: true }', '{ remote_ip: { address_prefix: 8.8.0.0, prefix_len: 16 } }');
  assert.equal(allowed(remote, req(), info({ xffRemote: '8.8.4.4' })), true);
  assert.equal(allowed(remote, req(), info()), false);
  // An absent prefix_len is 0: the whole address family (IPv4 only).
  const all4 = single('{ any: true }', '{ direct_remote_ip: { address_prefix: 0.0.0.0 } }');
  assert.equal(allowed(all4, req(), info({ remote: '203.0.113.9' })), true);
  assert.equal(allowed(all4, req(), info({ remote: '::1' })), false);
  const v6 = single('{ any: true }', '{ direct_remote_ip: { address_prefix: "2001:db8::", prefix_len: 32 } }');
  assert.equal(allowed(v6, req(), info({ remote: '2001:db8::7' })), true);
  assert.equal(allowed(v6, req(), info({ remote: '2001:db9::7' })), false);
  // An IPv4-mapped peer (dual-stack socket) matches IPv4 ranges.
  assert.equal(allowed(direct, req(), info({ remote: '::ffff:10.1.0.7' })), true);
});

test('principals: header, url_path, and_ids, or_ids, not_id', () => {
  const header = single('{ any: true }', '{ header: { name: x-user, string_match: { exact: alice } } }');
  assert.equal(allowed(header, req('/', { 'x-user': 'alice' }), info()), true);
  assert.equal(allowed(header, req('/', { 'x-user': 'bob' }), info()), false);
  assert.equal(allowed(header, req(), info()), false);
  const path = single('{ any: true }', '{ url_path: { path: { prefix: /public } } }');
  assert.equal(allowed(path, req('/public/x'), info()), true);
  assert.equal(allowed(path, req('/private'), info()), false);
  const and = single('{ any: true }', `{ and_ids: { ids: [ { direct_remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 } }, { header: { name: x-user, present_match: true } } ] } }`);
  assert.equal(allowed(and, req('/', { 'x-user': 'a' }), info()), true);
  assert.equal(allowed(and, req(), info()), false);
  assert.equal(allowed(and, req('/', { 'x-user': 'a' }), info({ remote: '11.0.0.1' })), false);
  const or = single('{ any: true }', `{ or_ids: { ids: [ { direct_remote_ip: { address_prefix: 11.0.0.0, prefix_len: 8 } }, { header: { name: x-user, present_match: true } } ] } }`);
  assert.equal(allowed(or, req('/', { 'x-user': 'a' }), info()), true);
  assert.equal(allowed(or, req(), info({ remote: '11.2.3.4' })), true);
  assert.equal(allowed(or, req(), info()), false);
  const not = single('{ any: true }', '{ not_id: { direct_remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 } } }');
  assert.equal(allowed(not, req(), info()), false);
  assert.equal(allowed(not, req(), info({ remote: '172.16.0.1' })), true);
});

test('principals: authenticated matches URI SANs, then DNS SANs, then the subject; plaintext never matches', () => {
  const spiffe = single('{ any: true }', '{ authenticated: { principal_name: { exact: "spiffe://cluster.local/ns/default/sa/client" } } }');
  const client = tls({ peerUriSans: ['spiffe://cluster.local/ns/default/sa/client'], peerDnsSans: ['client.local'], peerSubject: 'CN=client' });
  assert.equal(allowed(spiffe, req(), info({ tls: client })), true);
  assert.equal(allowed(spiffe, req(), info({ tls: tls({ peerUriSans: ['spiffe://cluster.local/ns/default/sa/intruder'] }) })), false);
  assert.equal(allowed(spiffe, req(), info()), false, 'plaintext');
  // Every URI SAN is tried, not just the first.
  assert.equal(allowed(spiffe, req(), info({ tls: tls({ peerUriSans: ['urn:other', 'spiffe://cluster.local/ns/default/sa/client'] }) })), true);
  const dns = single('{ any: true }', '{ authenticated: { principal_name: { suffix: ".svc.example.com" } } }');
  assert.equal(allowed(dns, req(), info({ tls: tls({ peerUriSans: ['spiffe://td/x'], peerDnsSans: ['api.svc.example.com'] }) })), true);
  assert.equal(allowed(dns, req(), info({ tls: tls({ peerDnsSans: ['api.example.org'] }) })), false);
  const subject = single('{ any: true }', '{ authenticated: { principal_name: { exact: "CN=frontend,O=example" } } }');
  assert.equal(allowed(subject, req(), info({ tls: tls({ peerSubject: 'CN=frontend,O=example' }) })), true);
  // The subject is still tried when SANs exist but none matches.
  assert.equal(allowed(subject, req(), info({ tls: tls({ peerUriSans: ['spiffe://a/b'], peerDnsSans: ['x.y'], peerSubject: 'CN=frontend,O=example' }) })), true);
  assert.equal(allowed(subject, req(), info({ tls: tls({ peerSubject: 'CN=backend,O=example' }) })), false);
  // A TLS connection whose client sent no certificate has no principal.
  assert.equal(allowed(subject, req(), info({ tls: tls({ peerCertificatePresented: false, peerCertificateValidated: false, peerSubject: 'CN=frontend,O=example' }) })), false);
  // No principal_name: any peer with a validated certificate.
  const anyPeer = single('{ any: true }', '{ authenticated: {} }');
  assert.equal(allowed(anyPeer, req(), info({ tls: tls({ peerSubject: 'CN=x' }) })), true);
  assert.equal(allowed(anyPeer, req(), info({ tls: tls({ peerCertificateValidated: false }) })), false);
  assert.equal(allowed(anyPeer, req(), info({ tls: tls({ peerCertificatePresented: false, peerCertificateValidated: false }) })), false);
  assert.equal(allowed(anyPeer, req(), info()), false);
  // At L4 the same: the connection's TLS session decides.
  assert.equal(allowed(spiffe, NO_HEADERS, info({ tls: client })), true);
});

test('permissions: any, header, url_path (query and fragment ignored), and/or/not rules', () => {
  const method = single('{ header: { name: ":method", string_match: { exact: GET } } }', '{ any: true }');
  assert.equal(allowed(method, req(), info()), true);
  assert.equal(allowed(method, HeaderMap.fromPairs([[':method', 'POST'], [':path', '/']]), info()), false);
  const path = single('{ url_path: { path: { exact: /admin } } }', '{ any: true }', 'DENY');
  assert.equal(allowed(path, req('/admin'), info()), false);
  assert.equal(allowed(path, req('/admin?x=1'), info()), false);
  assert.equal(allowed(path, req('/admin#frag'), info()), false);
  assert.equal(allowed(path, req('/admin/x'), info()), true);
  const suffix = single('{ url_path: { path: { suffix: suffix } } }', '{ any: true }');
  assert.equal(allowed(suffix, req('/suffix#seg?param=value'), info()), true);
  const regex = single('{ url_path: { path: { safe_regex: { regex: "/items/[0-9]+" } } } }', '{ any: true }');
  assert.equal(allowed(regex, req('/items/42?q'), info()), true);
  assert.equal(allowed(regex, req('/items/4x'), info()), false);
  const and = single(`{ and_rules: { rules: [ { header: { name: ":method", string_match: { exact: GET } } }, { url_path: { path: { prefix: /products } } } ] } }`, '{ any: true }');
  assert.equal(allowed(and, req('/products/1'), info()), true);
  assert.equal(allowed(and, req('/orders'), info()), false);
  const or = single('{ or_rules: { rules: [ { destination_port: 80 }, { destination_port: 443 } ] } }', '{ any: true }');
  assert.equal(allowed(or, req(), info({ localPort: 443 })), true);
  assert.equal(allowed(or, req(), info({ localPort: 8443 })), false);
  const not = single('{ not_rule: { url_path: { path: { prefix: /internal } } } }', '{ any: true }');
  assert.equal(allowed(not, req('/internal/x'), info()), false);
  assert.equal(allowed(not, req('/x'), info()), true);
});

test('permissions: destination_ip, destination_port, destination_port_range, requested_server_name', () => {
  const ip = single('{ destination_ip: { address_prefix: 192.168.0.0, prefix_len: 24 } }', '{ any: true }');
  assert.equal(allowed(ip, req(), info()), true);
  assert.equal(allowed(ip, req(), info({ local: '192.168.1.1' })), false);
  const port = single('{ destination_port: 8080 }', '{ any: true }');
  assert.equal(allowed(port, req(), info()), true);
  assert.equal(allowed(port, req(), info({ localPort: 8081 })), false);
  const range = single('{ destination_port_range: { start: 8000, end: 8080 } }', '{ any: true }');
  assert.equal(allowed(range, req(), info({ localPort: 8000 })), true);
  assert.equal(allowed(range, req(), info({ localPort: 8079 })), true);
  assert.equal(allowed(range, req(), info({ localPort: 8080 })), false, 'end is exclusive');
  const sni = single('{ requested_server_name: { safe_regex: { regex: ".*\\\\.cncf\\\\.io" } } }', '{ any: true }');
  assert.equal(allowed(sni, req(), info({ sni: 'www.cncf.io' })), true);
  assert.equal(allowed(sni, req(), info({ sni: 'www.example.com' })), false);
  assert.equal(allowed(sni, req(), info()), false);
  // Without SNI the name is '' (Envoy matches the empty string).
  const empty = single('{ requested_server_name: { exact: "" } }', '{ any: true }');
  assert.equal(allowed(empty, req(), info()), true);
});

test('L4 (no headers): header rules see a request without the header, url_path never matches', () => {
  const header = single('{ header: { name: ":method", string_match: { exact: GET } } }', '{ any: true }');
  assert.equal(allowed(header, NO_HEADERS, info()), false);
  const absent = single('{ header: { name: x-debug, present_match: false } }', '{ any: true }');
  assert.equal(allowed(absent, NO_HEADERS, info()), true);
  const path = single('{ url_path: { path: { prefix: / } } }', '{ any: true }');
  assert.equal(allowed(path, NO_HEADERS, info()), false);
  const notPath = single('{ not_rule: { url_path: { path: { prefix: / } } } }', '{ any: true }');
  assert.equal(allowed(notPath, NO_HEADERS, info()), true);
});

test('actions: ALLOW allows on a match, DENY denies on a match, LOG always allows and hints logging', () => {
  const yaml = (action: string): string => `
action: ${action}
policies:
  b-admins: { permissions: [ { url_path: { path: { prefix: /admin } } } ], principals: [ { header: { name: x-role, string_match: { exact: admin } } } ] }
  a-health: { permissions: [ { url_path: { path: { exact: /healthz } } } ], principals: [ { any: true } ] }
  c-any-admin: { permissions: [ { url_path: { path: { prefix: /admin } } } ], principals: [ { any: true } ] }`;
  const allow = engine(yaml('ALLOW'));
  assert.deepEqual(allow.policyNames, ['a-health', 'b-admins', 'c-any-admin']);
  assert.deepEqual(allow.evaluate({ headers: req('/healthz'), info: info() }), { allowed: true, policy: 'a-health', log: undefined });
  // Both b-admins and c-any-admin match: the first in name order is reported.
  assert.deepEqual(allow.evaluate({ headers: req('/admin', { 'x-role': 'admin' }), info: info() }), { allowed: true, policy: 'b-admins', log: undefined });
  assert.deepEqual(allow.evaluate({ headers: req('/other'), info: info() }), { allowed: false, policy: undefined, log: undefined });
  const deny = engine(yaml('DENY'));
  assert.deepEqual(deny.evaluate({ headers: req('/admin'), info: info() }), { allowed: false, policy: 'c-any-admin', log: undefined });
  assert.deepEqual(deny.evaluate({ headers: req('/other'), info: info() }), { allowed: true, policy: undefined, log: undefined });
  const log = engine(yaml('LOG'));
  assert.deepEqual(log.evaluate({ headers: req('/healthz'), info: info() }), { allowed: true, policy: 'a-health', log: true });
  assert.deepEqual(log.evaluate({ headers: req('/other'), info: info() }), { allowed: true, policy: undefined, log: false });
  // No policies: ALLOW denies everything, DENY allows everything; action defaults to ALLOW.
  assert.equal(allowed(engine('{ action: ALLOW }'), req(), info()), false);
  assert.equal(allowed(engine('{ action: DENY }'), req(), info()), true);
  assert.equal(engine('{}').action, 'ALLOW');
  // A policy needs a matching permission AND a matching principal.
  const both = single('{ destination_port: 8080 }', '{ direct_remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 } }');
  assert.equal(allowed(both, req(), info()), true);
  assert.equal(allowed(both, req(), info({ localPort: 9 })), false);
  assert.equal(allowed(both, req(), info({ remote: '11.0.0.1' })), false);
});

test('config errors name the unsupported or invalid field', () => {
  const errs = (yaml: string): string[] => {
    const r = compileRbac(decode(yaml, true), 'rules');
    assert.ok(!r.ok, `expected an error for ${yaml}`);
    return r.errors.map((e) => `${e.path}: ${e.reason}`);
  };
  const one = (perm: string, principal = '{ any: true }'): string[] => errs(`{ policies: { p: { permissions: [${perm}], principals: [${principal}] } } }`);
  assert.match(one('{ matcher: { name: m, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } }')[0]!, /permissions\[0\]\.matcher: .*not supported/);
  assert.match(one('{ uri_template: { name: u, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } }')[0]!, /permissions\[0\]\.uri_template: .*not supported/);
  assert.match(one('{ any: true }', '{ filter_state: { key: k, string_match: { exact: v } } }')[0]!, /principals\[0\]\.filter_state: .*not supported/);
  assert.match(one('{ and_rules: { rules: [ { any: true }, { uri_template: { name: u, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } } ] } }')[0]!, /permissions\[0\]\.and_rules\.rules\[1\]\.uri_template/);
  assert.match(one('{ metadata: { filter: f, path: [ { key: k } ], value: { string_match: { safe_regex: { regex: "(a" } } } } }')[0]!, /permissions\[0\]\.metadata\.value\.string_match/);
  assert.match(one('{ destination_ip: { address_prefix: not-an-ip, prefix_len: 8 } }')[0]!, /permissions\[0\]\.destination_ip: malformed IP address/);
  assert.match(one('{ any: true }', '{ remote_ip: { address_prefix: 10.0.0.0, prefix_len: 33 } }')[0]!, /principals\[0\]\.remote_ip: prefix_len 33 is out of range/);
  assert.match(one('{ destination_port_range: { start: 90, end: 80 } }')[0]!, /destination_port_range: range start 90 cannot be greater or equal than range end 80/);
  assert.match(one('{ url_path: { path: { safe_regex: { regex: "(a" } } } }')[0]!, /permissions\[0\]\.url_path\.path\.safe_regex\.regex: invalid regex/);
  assert.match(one('{ any: true }', '{ authenticated: { principal_name: { prefix: "" } } }')[0]!, /principals\[0\]\.authenticated\.principal_name\.prefix/);
  assert.match(errs('{ policies: { p: { permissions: [], principals: [ { any: true } ] } } }')[0]!, /policies\["p"\]\.permissions: value must contain at least 1 item/);
  assert.match(errs('{ policies: { p: { permissions: [ { any: true } ], principals: [] } } }')[0]!, /policies\["p"\]\.principals: value must contain at least 1 item/);
  assert.match(
    errs('{ policies: { p: { permissions: [ { any: true } ], principals: [ { any: true } ], condition: { const_expr: { bool_value: true } } } } }')[0]!,
    /policies\["p"\]\.condition: CEL conditions .* not supported/,
  );
  assert.match(errs('{ action: ALLOW, audit_logging_options: { audit_condition: ON_DENY } }')[0]!, /rules\.audit_logging_options: .*not supported/);
  // Several problems are all reported.
  assert.equal(one('{ destination_ip: { address_prefix: x } }', '{ filter_state: { key: k, string_match: { exact: v } } }').length, 2);
});

test('response details and counter names follow Envoy', () => {
  assert.equal(responseDetail(undefined), 'rbac_access_denied_matched_policy[none]');
  assert.equal(responseDetail('abdfxy'), 'rbac_access_denied_matched_policy[abdfxy]');
  assert.equal(responseDetail('ab df  xy'), 'rbac_access_denied_matched_policy[ab_df__xy]');
  assert.equal(responseDetail('a \t\f\v\n\ry'), 'rbac_access_denied_matched_policy[a______y]');
  assert.equal(statPrefixJoin('', 'rbac.'), 'rbac.');
  assert.equal(statPrefixJoin('tcp', 'rbac.'), 'tcp.rbac.');
  assert.equal(statPrefixJoin('tcp.', 'rbac.'), 'tcp.rbac.');
  const store = new StatsStore();
  const s = new RbacStats(store, 'test', '', 'shadow_rules_prefix_', 'envoy.filters.network.rbac');
  s.allowed.inc();
  s.shadowDenied.inc();
  s.policy('foobar', 'denied').inc();
  s.policy('foobar', 'shadow_allowed').inc();
  const withRules = new RbacStats(store, 'http.ingress.', 'rules_', '', 'envoy.filters.http.rbac');
  withRules.denied.inc();
  withRules.shadowAllowed.inc();
  withRules.policy('p', 'allowed').inc();
  const names = Object.entries(store.snapshot().counters).filter(([, v]) => v > 0).map(([k]) => k).sort();
  assert.deepEqual(names, [
    'http.ingress.rbac.rules_.denied',
    'http.ingress.rbac.rules_.policy.p.allowed',
    'http.ingress.rbac.shadow_allowed',
    'test.rbac.allowed',
    'test.rbac.policy.foobar.denied',
    'test.rbac.shadow_rules_prefix_.policy.foobar.shadow_allowed',
    'test.rbac.shadow_rules_prefix_.shadow_denied',
  ]);
});

test('checkShadow / checkEnforced count and record the outcome (LOG sets the access log hint, shadow never does)', () => {
  const store = new StatsStore();
  const stats = new RbacStats(store, 'http.in.', '', '', 'envoy.filters.http.rbac');
  const log = single('{ url_path: { path: { prefix: /debug } } }', '{ any: true }', 'LOG');
  const i1 = info();
  assert.equal(rbacOutcome(i1), undefined);
  checkShadow(log, { headers: req('/debug'), info: i1 }, stats, false);
  assert.deepEqual(rbacOutcome(i1), { shadowEngineResult: 'allowed', shadowEffectivePolicyId: 'p' });
  const d = checkEnforced(log, { headers: req('/debug'), info: i1 }, stats, true);
  assert.deepEqual(d, { allowed: true, policy: 'p', log: true });
  assert.equal(rbacOutcome(i1)?.accessLogHint, true);
  assert.equal(rbacOutcome(i1)?.enforcedEngineResult, 'allowed');
  const i2 = info();
  checkEnforced(log, { headers: req('/other'), info: i2 }, stats, true);
  assert.deepEqual(rbacOutcome(i2), { enforcedEngineResult: 'allowed', accessLogHint: false });
  const deny = single('{ any: true }', '{ any: true }', 'DENY');
  const i3 = info();
  assert.equal(checkEnforced(deny, { headers: req(), info: i3 }, stats, true).allowed, false);
  assert.deepEqual(rbacOutcome(i3), { enforcedEngineResult: 'denied', enforcedEffectivePolicyId: 'p' });
  // The same results in dynamic metadata, under Envoy's keys.
  assert.deepEqual(i1.dynamicMetadata, {
    'envoy.filters.http.rbac': { shadow_engine_result: 'allowed', shadow_effective_policy_id: 'p', enforced_engine_result: 'allowed', enforced_effective_policy_id: 'p' },
    'envoy.common': { access_log_hint: true },
  });
  assert.deepEqual(i3.dynamicMetadata, { 'envoy.filters.http.rbac': { enforced_engine_result: 'denied', enforced_effective_policy_id: 'p' } });
  const c = store.snapshot().counters;
  assert.equal(c['http.in.rbac.allowed'], 2);
  assert.equal(c['http.in.rbac.denied'], 1);
  assert.equal(c['http.in.rbac.shadow_allowed'], 1);
  assert.equal(c['http.in.rbac.policy.p.allowed'], 1, 'per-policy only when a policy matched');
  assert.equal(c['http.in.rbac.policy.p.denied'], 1);
  assert.equal(c['http.in.rbac.policy.p.shadow_allowed'], undefined, 'per-rule stats were off for the shadow check');
});
