import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Listener__Output } from '../../../src/generated/envoy/config/listener/v3/Listener.ts';
import { type ConnectionMatchInput, compileFilterChainMatcher } from '../../../src/proxy/listener/filter-chain-match.ts';
import { formatErrors } from '../../../src/config/result.ts';

function listener(yamlText: string): Listener__Output {
  const r = decodeJson<Listener__Output>('envoy.config.listener.v3.Listener', parseYaml(yamlText));
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function matcherOf(yamlText: string) {
  const l = listener(yamlText);
  const r = compileFilterChainMatcher(l.filter_chains, l.default_filter_chain, 'listener');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

const base: ConnectionMatchInput = {
  destinationPort: 8080,
  destinationIp: '10.1.2.3',
  serverName: undefined,
  transportProtocol: 'raw_buffer',
  applicationProtocols: [],
  sourceIp: '192.168.1.10',
  sourcePort: 40000,
};

function chainName(m: ReturnType<typeof matcherOf>, over: Partial<ConnectionMatchInput>): string | undefined {
  return m.match({ ...base, ...over })?.name;
}

test('destination_port: exact port wins, chains without a port are the fallback', () => {
  const m = matcherOf(`
filter_chains:
- name: p80
  filter_chain_match: { destination_port: 80 }
- name: any
default_filter_chain: { name: default }
`);
  assert.equal(chainName(m, { destinationPort: 80 }), 'p80');
  assert.equal(chainName(m, { destinationPort: 81 }), 'any');
});

test('destination_port: a port-specific subtree that fails does not fall back to port-less chains', () => {
  const m = matcherOf(`
filter_chains:
- name: p80-tls
  filter_chain_match: { destination_port: 80, transport_protocol: tls }
- name: any
default_filter_chain: { name: default }
`);
  assert.equal(chainName(m, { destinationPort: 80, transportProtocol: 'raw_buffer' }), 'default');
  assert.equal(chainName(m, { destinationPort: 80, transportProtocol: 'tls' }), 'p80-tls');
});

test('prefix_ranges: most specific CIDR wins, IPv4 and IPv6', () => {
  const m = matcherOf(`
filter_chains:
- name: ten
  filter_chain_match: { prefix_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }] }
- name: ten-one
  filter_chain_match: { prefix_ranges: [{ address_prefix: 10.1.0.0, prefix_len: 16 }, { address_prefix: "2001:db8::", prefix_len: 32 }] }
- name: v6-host
  filter_chain_match: { prefix_ranges: [{ address_prefix: "2001:db8::1", prefix_len: 128 }] }
- name: none
`);
  const cases: [string, string][] = [
    ['10.1.2.3', 'ten-one'],
    ['10.2.0.1', 'ten'],
    ['11.0.0.1', 'none'],
    ['::ffff:10.1.0.9', 'ten-one'],
    ['2001:db8::5', 'ten-one'],
    ['2001:db8::1', 'v6-host'],
    ['2001:db9::1', 'none'],
  ];
  for (const [ip, want] of cases) assert.equal(chainName(m, { destinationIp: ip }), want, ip);
});

test('server_names: exact, then the longest wildcard, then chains without names', () => {
  const m = matcherOf(`
filter_chains:
- name: exact
  filter_chain_match: { server_names: [www.example.com] }
- name: wild-example
  filter_chain_match: { server_names: ["*.example.com"] }
- name: wild-com
  filter_chain_match: { server_names: ["*.com"] }
- name: none
`);
  const cases: [string | undefined, string][] = [
    ['www.example.com', 'exact'],
    ['WWW.Example.com', 'exact'],
    ['api.example.com', 'wild-example'],
    ['a.b.example.com', 'wild-example'],
    ['example.com', 'wild-com'],
    ['other.org', 'none'],
    [undefined, 'none'],
  ];
  for (const [sni, want] of cases) assert.equal(chainName(m, { serverName: sni }), want, String(sni));
});

test('transport_protocol and application_protocols (client order decides)', () => {
  const m = matcherOf(`
filter_chains:
- name: tls-h2
  filter_chain_match: { transport_protocol: tls, application_protocols: [h2] }
- name: tls-h1
  filter_chain_match: { transport_protocol: tls, application_protocols: [http/1.1, http/1.0] }
- name: tls
  filter_chain_match: { transport_protocol: tls }
- name: plain
  filter_chain_match: { transport_protocol: raw_buffer }
`);
  assert.equal(chainName(m, { transportProtocol: 'tls', applicationProtocols: ['h2', 'http/1.1'] }), 'tls-h2');
  assert.equal(chainName(m, { transportProtocol: 'tls', applicationProtocols: ['http/1.1', 'h2'] }), 'tls-h1');
  assert.equal(chainName(m, { transportProtocol: 'tls', applicationProtocols: ['spdy'] }), 'tls');
  assert.equal(chainName(m, { transportProtocol: 'tls' }), 'tls');
  assert.equal(chainName(m, { transportProtocol: 'raw_buffer', applicationProtocols: ['h2'] }), 'plain');
});

test('direct_source_prefix_ranges, source_type, source_prefix_ranges, source_ports', () => {
  const m = matcherOf(`
filter_chains:
- name: direct
  filter_chain_match: { direct_source_prefix_ranges: [{ address_prefix: 172.16.0.0, prefix_len: 12 }] }
- name: local
  filter_chain_match: { source_type: SAME_IP_OR_LOOPBACK }
- name: external-net
  filter_chain_match: { source_type: EXTERNAL, source_prefix_ranges: [{ address_prefix: 192.168.0.0, prefix_len: 16 }] }
- name: external-net-port
  filter_chain_match: { source_type: EXTERNAL, source_prefix_ranges: [{ address_prefix: 192.168.0.0, prefix_len: 16 }], source_ports: [5555] }
- name: external
  filter_chain_match: { source_type: EXTERNAL }
`);
  assert.equal(chainName(m, { sourceIp: '192.168.1.1', directSourceIp: '172.16.3.3' }), 'direct');
  assert.equal(chainName(m, { sourceIp: '127.0.0.1' }), 'local');
  assert.equal(chainName(m, { sourceIp: '10.1.2.3', destinationIp: '10.1.2.3' }), 'local');
  assert.equal(chainName(m, { sourceIp: '192.168.1.1' }), 'external-net');
  assert.equal(chainName(m, { sourceIp: '192.168.1.1', sourcePort: 5555 }), 'external-net-port');
  assert.equal(chainName(m, { sourceIp: '8.8.8.8' }), 'external');
});

test('no match without a default chain → undefined; with one → the default', () => {
  const y = `
filter_chains:
- name: tls
  filter_chain_match: { transport_protocol: tls }
`;
  assert.equal(matcherOf(y).match(base), undefined);
  assert.equal(chainName(matcherOf(`${y}default_filter_chain: { name: fallback }\n`), {}), 'fallback');
});

function compileErrors(yamlText: string): string {
  const l = listener(yamlText);
  const r = compileFilterChainMatcher(l.filter_chains, l.default_filter_chain, 'listener');
  assert.equal(r.ok, false);
  return r.ok ? '' : formatErrors(r.errors);
}

test('duplicate and overlapping matchers are config errors', () => {
  assert.match(
    compileErrors(`
filter_chains:
- name: a
  filter_chain_match: { server_names: [a.com], transport_protocol: tls }
- name: b
  filter_chain_match: { server_names: [a.com], transport_protocol: tls }
`),
    /listener\.filter_chains\[1\]\.filter_chain_match: multiple filter chains with the same matching rules are defined/,
  );
  assert.match(compileErrors(`
filter_chains:
- name: a
- name: b
`), /same matching rules/);
  assert.match(
    compileErrors(`
filter_chains:
- name: a
  filter_chain_match: { server_names: [a.com, b.com] }
- name: b
  filter_chain_match: { server_names: [b.com] }
`),
    /overlapping matching rules/,
  );
});

test('bad matchers are config errors with field paths', () => {
  assert.match(
    compileErrors(`
filter_chains:
- filter_chain_match: { prefix_ranges: [{ address_prefix: 10.0.0.300, prefix_len: 8 }] }
`),
    /filter_chains\[0\]\.filter_chain_match\.prefix_ranges\[0\]\.address_prefix: malformed IP address/,
  );
  assert.match(
    compileErrors(`
filter_chains:
- filter_chain_match: { prefix_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 33 }] }
`),
    /prefix_len 33 is out of range/,
  );
  assert.match(compileErrors(`
filter_chains:
- filter_chain_match: { server_names: ["w*.example.com"] }
`), /server_names\[0\]: partial wildcards are not supported/);
});

test('non-canonical CIDRs normalise (10.1.2.3/8 duplicates 10.0.0.0/8)', () => {
  assert.match(
    compileErrors(`
filter_chains:
- name: a
  filter_chain_match: { prefix_ranges: [{ address_prefix: 10.1.2.3, prefix_len: 8 }] }
- name: b
  filter_chain_match: { prefix_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }] }
`),
    /same matching rules/,
  );
});

test('one chain without filter_chain_match takes every connection; chains that match on no address never parse one', () => {
  const only = matcherOf(`
filter_chains:
- name: only
`);
  for (const over of [{}, { sourceIp: '', destinationIp: '' }, { destinationPort: 1, transportProtocol: 'tls', serverName: 'x.example' }]) {
    assert.equal(chainName(only, over), 'only');
  }
  // SNI and port criteria only: unparsable addresses change nothing.
  const named = matcherOf(`
filter_chains:
- name: sni
  filter_chain_match: { server_names: [a.example] }
- name: port
  filter_chain_match: { destination_port: 9000 }
default_filter_chain: { name: default }
`);
  assert.equal(chainName(named, { serverName: 'a.example', sourceIp: 'not-an-ip', destinationIp: '' }), 'sni');
  assert.equal(chainName(named, { destinationPort: 9000, sourceIp: 'not-an-ip' }), 'port');
  assert.equal(chainName(named, { serverName: 'b.example', sourceIp: 'not-an-ip' }), 'default');
  // One chain with an address criterion: the addresses are read again.
  const local = matcherOf(`
filter_chains:
- name: local
  filter_chain_match: { source_type: SAME_IP_OR_LOOPBACK }
default_filter_chain: { name: default }
`);
  assert.equal(chainName(local, { sourceIp: '127.0.0.1' }), 'local');
  assert.equal(chainName(local, { sourceIp: '192.168.1.10' }), 'default');
});
