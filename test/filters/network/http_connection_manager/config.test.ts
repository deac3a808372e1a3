// parseHttpConnectionManager: Envoy's defaults and its config errors (with field paths), and the
// registered network filter serving a connection through takeOver.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';
import { decodeJson } from '../../../../src/config/decode.ts';
import { formatErrors } from '../../../../src/config/result.ts';
import { ExtensionRegistry } from '../../../../src/filters/registry.ts';
import type { NetworkFilterFactory } from '../../../../src/filters/network/filter.ts';
import { parseHttpConnectionManager, register, HCM_TYPE, type HcmConfig } from '../../../../src/filters/network/http_connection_manager/index.ts';
import { newStreamInfo } from '../../../../src/proxy/http/stream-info.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import { ECHO, PAUSE, ROUTES, parseHcm, registerTestFilters } from './harness.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';

function parse(json: Record<string, unknown>): string | HcmConfig {
  registerTestFilters();
  const d = decodeJson<never>(HCM_TYPE, { stat_prefix: 'p', route_config: ROUTES, http_filters: [ECHO], ...json });
  if (!d.ok) return formatErrors(d.errors);
  const r = parseHttpConnectionManager(d.value, { path: 'hcm', clusterNames: undefined });
  return r.ok ? r.value : formatErrors(r.errors);
}

test("Envoy's defaults", () => {
  const c = parseHcm();
  assert.equal(c.codecType, 'AUTO');
  assert.equal(c.serverName, 'envoy');
  assert.equal(c.serverHeaderTransformation, 'OVERWRITE');
  assert.equal(c.generateRequestId, true);
  assert.equal(c.useRemoteAddress, false);
  assert.equal(c.idleTimeoutMs, 3600_000);
  assert.equal(c.streamIdleTimeoutMs, 300_000);
  assert.equal(c.requestTimeoutMs, 0);
  assert.equal(c.drainTimeoutMs, 5000);
  assert.equal(c.delayedCloseMs, 1000);
  const d = parseHcm({ delayed_close_timeout: '0.25s' });
  assert.equal(d.delayedCloseMs, 250);
  assert.equal(c.maxRequestHeadersKb, 60);
  assert.equal(c.maxHeadersCount, 100);
  assert.equal(c.headersWithUnderscoresAction, 'ALLOW');
  assert.equal(c.http1.acceptHttp10, false);
  assert.equal(c.httpFilters.length, 2);
  assert.ok(Object.isFrozen(c));
});

test('config errors name their field', () => {
  assert.match(String(parse({ http_filters: [{ name: 'x.unknown', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' } }, ECHO] })), /hcm.http_filters\[0\]: unknown HTTP filter "x.unknown" \(type.googleapis.com\/google.protobuf.Duration\)/);
  const skipped = parse({ http_filters: [{ name: 'x.unknown', is_optional: true, typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' } }, ECHO] });
  assert.equal(typeof skipped === 'object' && skipped.httpFilters.length, 1);
  assert.match(String(parse({ http_filters: [PAUSE] })), /non-terminal filter named test.pause of type google.protobuf.Struct is the last filter in a http filter chain/);
  assert.match(String(parse({ http_filters: [ECHO, PAUSE] })), /terminal filter named test.echo of type google.protobuf.Empty must be the last filter/);
  assert.match(String(parse({ http_filters: [] })), /hcm.http_filters: at least one HTTP filter/);
  assert.match(String(parse({ route_config: undefined, rds: { route_config_name: 'r', config_source: { ads: {} } } })), /hcm.rds: rds is not supported yet/);
  assert.match(String(parse({ codec_type: 'HTTP3' })), /hcm.codec_type: HTTP\/3 is not supported/);
  assert.match(String(parse({ stat_prefix: '' })), /stat_prefix/);
  assert.match(String(parse({ local_reply_config: { mappers: [{ filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 1, runtime_key: 'k' } } } }, status_code: 100 }] } })), /local_reply_config.mappers\[0\].status_code/);
});

test('original_ip_detection_extensions: unknown types and mixing with use_remote_address / xff_num_trusted_hops are errors', () => {
  const xff = { name: 'envoy.http.original_ip_detection.xff', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig', xff_num_trusted_hops: 1 } };
  const ok = parse({ original_ip_detection_extensions: [xff] });
  assert.equal(typeof ok === 'object' && ok.originalIpDetection?.length, 1);
  assert.match(String(parse({ original_ip_detection_extensions: [xff], use_remote_address: true })), /hcm.original_ip_detection_extensions: original IP detection extensions and use_remote_address may not be mixed/);
  assert.match(String(parse({ original_ip_detection_extensions: [xff], xff_num_trusted_hops: 1 })), /may not be mixed/);
  assert.match(
    String(parse({ original_ip_detection_extensions: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' } }] })),
    /hcm.original_ip_detection_extensions\[0\].typed_config: unknown original IP detection extension google.protobuf.Duration/,
  );
});

test('registered network filter takes a connection over', { timeout: 10_000 }, async () => {
  registerTestFilters();
  const reg = new ExtensionRegistry();
  register(reg);
  const spec = reg.find('network', `type.googleapis.com/${HCM_TYPE}`, undefined)!;
  assert.equal(spec.name, 'envoy.filters.network.http_connection_manager');
  const d = decodeJson<never>(HCM_TYPE, { stat_prefix: 'reg', route_config: ROUTES, http_filters: [ECHO] });
  assert.ok(d.ok);
  const cfg = spec.parse(d.value, { path: '', clusterNames: undefined });
  assert.ok(cfg.ok, cfg.ok ? '' : formatErrors(cfg.errors));
  const stats = new StatsStore();
  const factory = spec.factory(cfg.value, { stats, clusterManager: undefined as unknown as ClusterManager, workerId: 0, ...testRuntime() }) as NetworkFilterFactory & { manager: { close(): Promise<void> } };
  assert.equal(factory.terminal, true);
  const server = net.createServer((socket) => {
    const streamInfo = newStreamInfo({ downstreamRemote: { address: socket.remoteAddress!, port: socket.remotePort! }, downstreamLocal: { address: socket.localAddress!, port: socket.localPort! }, connectionId: 7 });
    factory.takeOver!(cfg.value, { socket, streamInfo, bufferLimitBytes: 1024 * 1024, continueReading: () => {}, close: () => socket.destroy() });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const r = await request(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
    assert.equal(r.statusCode, 200);
    await r.body.text();
    assert.equal(stats.snapshot().counters['http.reg.downstream_rq_2xx'], 1);
  } finally {
    await factory.manager.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
