// envoy.filters.network.local_ratelimit: config parsing, and the real process (two workers) with
// tcp_proxy behind the filter — connections past the process-wide bucket are closed at once and
// counted in local_ratelimit.<stat_prefix>.rate_limited; a refill lets the next one through.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { parseNetworkLocalRateLimit, NETWORK_LOCAL_RATELIMIT_TYPE } from '../../../../src/filters/network/local_ratelimit/index.ts';
import { startLegate } from '../../../helpers/legate.ts';
import { cluster, socketAddress, TCP_PROXY_TYPE } from '../../../helpers/config.ts';

function parseYaml(y: string, patch: Record<string, unknown> = {}) {
  const d = decodeJson<Record<string, unknown>>(NETWORK_LOCAL_RATELIMIT_TYPE, parse(y));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  // Patched after decoding: the decoder's own PGV checks would otherwise catch these first.
  return parseNetworkLocalRateLimit({ ...d.value, ...patch }, { path: 'f.typed_config' });
}

test('config: stat_prefix and token_bucket are required; fill_interval ≥ 50 ms; share_key names the bucket', () => {
  const good = parseYaml('{ stat_prefix: tcp, token_bucket: { max_tokens: 2, fill_interval: 1s } }');
  assert.ok(good.ok);
  assert.deepEqual(good.value.tokenBucket, { maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 1000 });
  assert.equal(good.value.runtimeEnabled, undefined);
  const shared = parseYaml('{ stat_prefix: tcp, share_key: k, token_bucket: { max_tokens: 2, fill_interval: 1s } }');
  assert.ok(shared.ok);
  assert.match(shared.value.bucketKey, /share\.k$/);
  const bad = parseYaml('{ stat_prefix: x, token_bucket: { max_tokens: 2, fill_interval: 1s } }', {
    stat_prefix: '',
    token_bucket: { max_tokens: 2, tokens_per_fill: null, fill_interval: { seconds: '0', nanos: 10_000_000 } },
  });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => e.path),
    ['f.typed_config.stat_prefix', 'f.typed_config.token_bucket.fill_interval'],
  );
  const none = parseYaml('{ stat_prefix: tcp, token_bucket: { max_tokens: 2, fill_interval: 1s } }', { token_bucket: null });
  assert.ok(!none.ok);
  assert.equal(none.errors[0]!.path, 'f.typed_config.token_bucket');
});

/** Connects, sends `ping`, and reports whether it came back or the connection was closed first. */
async function probe(port: number): Promise<'echo' | 'closed'> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  let got = '';
  s.on('data', (d: Buffer) => {
    got += d.toString();
    if (got === 'ping') s.end();
  });
  s.write('ping');
  // (events.once would reject on the ECONNRESET a rate-limited connection gets.)
  await new Promise((resolve) => s.on('close', resolve));
  return got === 'ping' ? 'echo' : 'closed';
}

function rateLimitedListener(name: string, filter: Record<string, unknown>): object {
  return {
    name,
    address: socketAddress(0),
    filter_chains: [
      {
        filters: [
          { name: 'envoy.filters.network.local_ratelimit', typed_config: { '@type': `type.googleapis.com/${NETWORK_LOCAL_RATELIMIT_TYPE}`, ...filter } },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster: 'echo' } },
        ],
      },
    ],
  };
}

test('two workers, tcp_proxy behind: exactly max_tokens connections pass, the rest are closed and counted; refills and runtime_enabled', { timeout: 30_000 }, async () => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  const legate = await startLegate(
    {
      static_resources: {
        listeners: [
          rateLimitedListener('limited', { stat_prefix: 'tcp_limited', token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: '60s' } }),
          rateLimitedListener('refill', { stat_prefix: 'tcp_refill', token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '0.2s' } }),
          rateLimitedListener('off', {
            stat_prefix: 'tcp_off',
            token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '60s' },
            runtime_enabled: { runtime_key: 'tcp_rl_enabled', default_value: false },
          }),
        ],
        clusters: [cluster('echo', { ports: [echoPort] })],
      },
      admin: { address: socketAddress(0) },
    },
    { concurrency: 2 },
  );
  try {
    const limited = await legate.listenerPort('limited');
    const results = await Promise.all(Array.from({ length: 12 }, () => probe(limited)));
    assert.equal(results.filter((r) => r === 'echo').length, 3, results.join(' '));
    const refill = await legate.listenerPort('refill');
    assert.equal(await probe(refill), 'echo');
    assert.equal(await probe(refill), 'closed');
    await sleep(250);
    assert.equal(await probe(refill), 'echo');
    const off = await legate.listenerPort('off');
    assert.deepEqual([await probe(off), await probe(off), await probe(off)], ['echo', 'echo', 'echo']);
    await sleep(100); // stats reach the main thread on its next merge
    let s = await legate.stats();
    for (let i = 0; i < 20 && s['local_ratelimit.tcp_limited.rate_limited'] !== 9; i++) {
      await sleep(100);
      s = await legate.stats();
    }
    assert.equal(s['local_ratelimit.tcp_limited.rate_limited'], 9);
    assert.equal(s['tcp.limited.downstream_cx_total'], 3);
    assert.equal(s['local_ratelimit.tcp_refill.rate_limited'], 1);
    assert.equal(s['local_ratelimit.tcp_off.rate_limited'] ?? 0, 0);
    assert.equal(s['tcp.off.downstream_cx_total'], 3);
  } finally {
    await legate.stop();
    echo.close();
  }
});
