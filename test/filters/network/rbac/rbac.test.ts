// envoy.filters.network.rbac: config parsing, and the real process with tcp_proxy behind the filter —
// connections allowed or reset by destination port and by the client's address (127.0.0.1 vs
// 127.0.0.2 over loopback), shadow rules that only count, and `<stat_prefix>.rbac.*` counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { NETWORK_RBAC_TYPE, parseNetworkRbac } from '../../../../src/filters/network/rbac/index.ts';
import { startLegate } from '../../../helpers/legate.ts';
import { cluster, socketAddress, TCP_PROXY_TYPE } from '../../../helpers/config.ts';
import { freePort } from '../../../helpers/free-port.ts';

function parseYaml(y: string, patch: Record<string, unknown> = {}) {
  const d = decodeJson<Record<string, unknown>>(NETWORK_RBAC_TYPE, parse(y));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  // Patched after decoding: the decoder's own PGV checks would otherwise catch these first.
  return parseNetworkRbac({ ...d.value, ...patch }, { path: 'f.typed_config' });
}

test('config: stat_prefix is required; enforcement_type; matcher forms and unsupported rules name their field', () => {
  const good = parseYaml('{ stat_prefix: tcp, rules: { action: DENY }, shadow_rules_stat_prefix: s_, enforcement_type: CONTINUOUS }');
  assert.ok(good.ok);
  assert.equal(good.value.statPrefix, 'tcp');
  assert.equal(good.value.engine?.action, 'DENY');
  assert.equal(good.value.shadowEngine, undefined);
  assert.equal(good.value.shadowRulesStatPrefix, 's_');
  assert.equal(good.value.enforcementType, 'CONTINUOUS');
  const bare = parseYaml('{ stat_prefix: tcp }');
  assert.ok(bare.ok);
  assert.equal(bare.value.engine, undefined, 'no rules: nothing enforced');
  assert.equal(bare.value.enforcementType, 'ONE_TIME_ON_FIRST_BYTE');
  const noPrefix = parseYaml('{ stat_prefix: x }', { stat_prefix: '' });
  assert.ok(!noPrefix.ok);
  assert.equal(noPrefix.errors[0]!.path, 'f.typed_config.stat_prefix');
  const matcher = parseYaml('{ stat_prefix: tcp, shadow_matcher: { on_no_match: { action: { name: a, typed_config: { "@type": type.googleapis.com/google.protobuf.Empty } } } } }');
  assert.ok(!matcher.ok);
  assert.equal(matcher.errors[0]!.path, 'f.typed_config.shadow_matcher');
  const fs = parseYaml('{ stat_prefix: tcp, shadow_rules: { policies: { p: { permissions: [ { any: true } ], principals: [ { filter_state: { key: k, string_match: { exact: v } } } ] } } } }');
  assert.ok(!fs.ok);
  assert.equal(fs.errors[0]!.path, 'f.typed_config.shadow_rules.policies["p"].principals[0].filter_state');
});

/** Connects (from `localAddress`), sends `ping`, and reports whether it came back or the connection was closed first. */
async function probe(port: number, localAddress = '127.0.0.1'): Promise<'echo' | 'closed'> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  let got = '';
  s.on('data', (d: Buffer) => {
    got += d.toString();
    if (got === 'ping') s.end();
  });
  s.write('ping');
  // (events.once would reject on the ECONNRESET a denied connection gets.)
  await new Promise((resolve) => s.on('close', resolve));
  return got === 'ping' ? 'echo' : 'closed';
}

/** A port nobody listens on right now (bound then released), for rules that name a listener's port. */

function rbacListener(name: string, port: number, rbac: Record<string, unknown>): object {
  return {
    name,
    address: socketAddress(port),
    filter_chains: [
      {
        filters: [
          { name: 'envoy.filters.network.rbac', typed_config: { '@type': `type.googleapis.com/${NETWORK_RBAC_TYPE}`, ...rbac } },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster: 'echo' } },
        ],
      },
    ],
  };
}

test('tcp_proxy behind the filter: allow/deny by destination port and by direct_remote_ip, shadow rules only count', { timeout: 30_000 }, async () => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  const portA = await freePort();
  const portB = await freePort();
  // The same rules on two listeners: only the one on portA is allowed.
  const byPort = {
    rules: {
      action: 'ALLOW',
      policies: {
        'port-a': { permissions: [{ or_rules: { rules: [{ destination_port: portA }, { destination_port_range: { start: 1, end: 2 } }] } }], principals: [{ any: true }] },
      },
    },
    shadow_rules: {
      action: 'DENY',
      policies: { 'second-loopback': { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.2', prefix_len: 32 } }] } },
    },
    shadow_rules_stat_prefix: 'sh_',
  };
  const legate = await startLegate({
    static_resources: {
      listeners: [
        rbacListener('port-a', portA, { stat_prefix: 'tcp_a.', ...byPort }),
        rbacListener('port-b', portB, { stat_prefix: 'tcp_b', enforcement_type: 'CONTINUOUS', ...byPort }),
        rbacListener('by-ip', 0, {
          stat_prefix: 'tcp_ip',
          rules: {
            action: 'DENY',
            policies: {
              'second loopback': { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.2', prefix_len: 32 } }] },
              // Header and path rules see no headers at L4: this policy never matches.
              'path-rule': { permissions: [{ url_path: { path: { prefix: '/' } } }], principals: [{ any: true }] },
            },
          },
        }),
        rbacListener('no-rules', 0, { stat_prefix: 'tcp_none' }),
      ],
      clusters: [cluster('echo', { ports: [echoPort] })],
    },
    admin: { address: socketAddress(0) },
  });
  try {
    assert.deepEqual([await probe(portA), await probe(portA, '127.0.0.2')], ['echo', 'echo']);
    assert.deepEqual([await probe(portB), await probe(portB)], ['closed', 'closed']);
    const byIp = await legate.listenerPort('by-ip');
    assert.deepEqual([await probe(byIp), await probe(byIp, '127.0.0.2'), await probe(byIp)], ['echo', 'closed', 'echo']);
    const none = await legate.listenerPort('no-rules');
    assert.equal(await probe(none, '127.0.0.2'), 'echo');
    let s = await legate.stats();
    for (let i = 0; i < 20 && s['tcp_ip.rbac.denied'] !== 1; i++) {
      await sleep(100); // stats reach the main thread on its next merge
      s = await legate.stats();
    }
    assert.equal(s['tcp_a.rbac.allowed'], 2);
    assert.equal(s['tcp_a.rbac.denied'] ?? 0, 0);
    assert.equal(s['tcp_a.rbac.sh_.shadow_allowed'], 1);
    assert.equal(s['tcp_a.rbac.sh_.shadow_denied'], 1);
    assert.equal(s['tcp_b.rbac.denied'], 2);
    assert.equal(s['tcp_b.rbac.sh_.shadow_allowed'], 2);
    assert.equal(s['tcp_ip.rbac.allowed'], 2);
    assert.equal(s['tcp_ip.rbac.denied'], 1);
    assert.equal(s['tcp_none.rbac.allowed'] ?? 0, 0);
    // Denied connections never reach tcp_proxy.
    assert.equal(s['tcp.port-a.downstream_cx_total'], 2);
    assert.equal(s['tcp.port-b.downstream_cx_total'] ?? 0, 0);
    assert.equal(s['tcp.by-ip.downstream_cx_total'], 2);
  } finally {
    await legate.stop();
    echo.close();
  }
});
