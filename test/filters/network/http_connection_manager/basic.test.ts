// The HCM end to end over real sockets: HTTP/1.1 and HTTP/2 (h2c) through a terminal test filter,
// AUTO codec detection, trailers, HTTP/1.0, request/response header handling, stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, request } from 'undici';
import { ROUTES, h2request, jsonHeaders, rawExchange, startProxy } from './harness.ts';

test('HTTP/1.1 request through the filter chain, with stats', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const r = await request(`http://127.0.0.1:${p.port}/hello?x=1`, { headers: { 'x-custom': 'a' } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['server'], 'envoy');
    assert.equal(r.headers['x-pause-filter'], 'seen');
    const h = jsonHeaders(await r.body.text());
    assert.equal(h[':method'], 'GET');
    assert.equal(h[':path'], '/hello?x=1');
    assert.equal(h[':authority'], `127.0.0.1:${p.port}`);
    assert.equal(h[':scheme'], 'http');
    assert.equal(h['x-custom'], 'a');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.match(h['x-request-id']!, /^[0-9a-f-]{36}$/);
    assert.equal(h['host'], undefined);
    assert.equal(p.counter('downstream_rq_total'), 1);
    assert.equal(p.counter('downstream_rq_http1_total'), 1);
    assert.equal(p.counter('downstream_rq_2xx'), 1);
    assert.equal(p.counter('downstream_cx_http1_total'), 1);
    assert.equal(p.gauge('downstream_rq_active'), 0);
  } finally {
    await p.close();
  }
});

test('HTTP/2 (h2c, AUTO codec) request, with stats', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const r = await h2request(p.port, { ':path': '/h2', 'x-custom': 'b' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['server'], 'envoy');
    const h = jsonHeaders(r.body);
    assert.equal(h[':path'], '/h2');
    assert.equal(h['x-custom'], 'b');
    assert.equal(p.counter('downstream_rq_http2_total'), 1);
    assert.equal(p.counter('downstream_cx_http2_total'), 1);
    assert.equal(p.counter('downstream_rq_2xx'), 1);
  } finally {
    await p.close();
  }
});

test('codec_type HTTP1 and HTTP2 are forced', { timeout: 10_000 }, async () => {
  const p1 = await startProxy({ codec_type: 'HTTP1' });
  const p2 = await startProxy({ codec_type: 'HTTP2' });
  try {
    assert.equal((await request(`http://127.0.0.1:${p1.port}/`)).statusCode, 200);
    assert.equal((await h2request(p2.port, {})).status, 200);
    // An HTTP/1.1 request on an HTTP2-only listener is not understood.
    const raw = await rawExchange(p2.port, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n', 500);
    assert.doesNotMatch(raw, /HTTP\/1.1 200/);
  } finally {
    await p1.close();
    await p2.close();
  }
});

test('request bodies and trailers are echoed (HTTP/1.1 chunked with enable_trailers, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ http_protocol_options: { enable_trailers: true } });
  try {
    const r2 = await h2request(p.port, { ':method': 'POST' }, 'h2 body', { 'x-t': 'v2' });
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), 'h2 body');
    assert.equal(r2.trailers?.['echo-x-t'], 'v2');

    const raw = await rawExchange(
      p.port,
      'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-t: v1\r\n\r\n',
    );
    assert.match(raw, /^HTTP\/1.1 200/);
    assert.match(raw, /transfer-encoding: chunked/i);
    assert.match(raw, /5\r\nhello\r\n0\r\necho-x-t: v1\r\n\r\n/);
  } finally {
    await p.close();
  }
});

test('HTTP/1.1 keep-alive and pipelining', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const raw = await rawExchange(p.port, 'GET /a HTTP/1.1\r\nhost: a\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    const heads = raw.match(/HTTP\/1.1 200/g) ?? [];
    assert.equal(heads.length, 2);
    assert.ok(raw.indexOf('"/a"') < raw.indexOf('"/b"'));
    const c = new Client(`http://127.0.0.1:${p.port}`);
    for (let i = 0; i < 3; i++) assert.equal((await c.request({ path: '/', method: 'GET' })).statusCode, 200);
    await c.close();
    assert.equal(p.counter('downstream_cx_http1_total'), 2);
  } finally {
    await p.close();
  }
});

test('HTTP/1.0 is rejected with 426 by default and served with accept_http_10', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  const p10 = await startProxy({ http_protocol_options: { accept_http_10: true, default_host_for_http_10: 'default.host' } });
  try {
    assert.match(await rawExchange(p.port, 'GET / HTTP/1.0\r\n\r\n'), /^HTTP\/1.1 426/);
    const raw = await rawExchange(p10.port, 'GET /ten HTTP/1.0\r\n\r\n');
    assert.match(raw, /^HTTP\/1.[01] 200/);
    assert.match(raw, /":authority","default.host"/);
    assert.equal(p.counter('downstream_rq_4xx'), 1);
  } finally {
    await p.close();
    await p10.close();
  }
});

test('x-forwarded-for, x-envoy-* sanitising and x-request-id (use_remote_address)', { timeout: 10_000 }, async () => {
  const edge = await startProxy({ use_remote_address: true, always_set_request_id_in_response: true });
  const inner = await startProxy({});
  try {
    // Loopback peer with use_remote_address: internal request, x-envoy-* kept.
    let r = await request(`http://127.0.0.1:${edge.port}/`, { headers: { 'x-envoy-retry-on': '5xx', 'x-request-id': 'keep-me' } });
    let h = jsonHeaders(await r.body.text());
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-envoy-internal'], 'true');
    assert.equal(h['x-envoy-retry-on'], '5xx');
    assert.equal(h['x-request-id'], 'keep-me');
    assert.equal(r.headers['x-request-id'], 'keep-me');

    // A client-supplied XFF makes it external: x-envoy-* stripped, request id regenerated.
    r = await request(`http://127.0.0.1:${edge.port}/`, {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-envoy-retry-on': '5xx', 'x-envoy-internal': 'true', 'x-request-id': 'spoofed', 'x-forwarded-proto': 'https' },
    });
    h = jsonHeaders(await r.body.text());
    assert.equal(h['x-forwarded-for'], '203.0.113.7,127.0.0.1');
    assert.equal(h['x-envoy-retry-on'], undefined);
    assert.equal(h['x-envoy-internal'], undefined);
    assert.notEqual(h['x-request-id'], 'spoofed');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(r.headers['x-request-id'], h['x-request-id']);

    // Without use_remote_address: XFF is not appended; the trusted address comes from XFF; no XFF → external.
    const r2 = await h2request(inner.port, { 'x-forwarded-for': '10.1.2.3', 'x-envoy-max-retries': '3', 'x-request-id': 'abc' });
    h = jsonHeaders(r2.body);
    assert.equal(h['x-forwarded-for'], '10.1.2.3');
    assert.equal(h['x-envoy-internal'], 'true');
    assert.equal(h['x-envoy-max-retries'], '3');
    assert.equal(h['x-request-id'], 'abc');
    assert.equal(JSON.parse(r2.body.toString()).remote, '10.1.2.3');
    const r3 = await h2request(inner.port, { 'x-envoy-max-retries': '3' });
    assert.equal(jsonHeaders(r3.body)['x-envoy-max-retries'], undefined);
  } finally {
    await edge.close();
    await inner.close();
  }
});

test('repeated x-forwarded-for lines are one list (as Envoy joins them): the trusted address is the last of all, not of the first line', { timeout: 10_000 }, async () => {
  const inner = await startProxy({});
  const edge = await startProxy({ use_remote_address: true, xff_num_trusted_hops: 1 });
  const twoLines = (port: number): Promise<string> =>
    rawExchange(port, 'GET / HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-for: 203.0.113.5\r\nx-envoy-retry-on: 5xx\r\nconnection: close\r\n\r\n');
  const echoed = (raw: string): { headers: [string, string][]; remote: string } => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { headers: [string, string][]; remote: string };
  try {
    // Reading the first line alone would trust 10.0.0.1: an internal request keeping x-envoy-*.
    let e = echoed(await twoLines(inner.port));
    assert.equal(e.remote, '203.0.113.5');
    assert.deepEqual(e.headers.filter(([n]) => n === 'x-forwarded-for'), [['x-forwarded-for', '10.0.0.1,203.0.113.5']]);
    assert.equal(e.headers.find(([n]) => n === 'x-envoy-retry-on'), undefined, 'external: x-envoy-* removed');
    // Edge, one trusted hop: the client is the last address the previous hop wrote; our own is appended.
    e = echoed(await twoLines(edge.port));
    assert.equal(e.remote, '203.0.113.5');
    assert.deepEqual(e.headers.filter(([n]) => n === 'x-forwarded-for'), [['x-forwarded-for', '10.0.0.1,203.0.113.5,127.0.0.1']]);
  } finally {
    await inner.close();
    await edge.close();
  }
});

test('a #fragment in the path: 400 as Envoy; stripped with http_reject_path_with_fragment off (Istio), kept when its unsafe guard is off too', { timeout: 10_000 }, async () => {
  const reject = await startProxy({});
  const strip = await startProxy({}, { runtime: { 'envoy.reloadable_features.http_reject_path_with_fragment': 'false' } });
  const keep = await startProxy({}, { runtime: { 'envoy.reloadable_features.http_reject_path_with_fragment': 'false', 'envoy.reloadable_features.http_strip_fragment_from_path_unsafe_if_disabled': 'false' } });
  const get = (port: number): Promise<string> => rawExchange(port, 'GET /a/b?q=1#frag HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
  try {
    assert.match(await get(reject.port), /^HTTP\/1.1 400 /);
    const h2 = await h2request(reject.port, { ':path': '/x#y' });
    assert.equal(h2.status, 400);
    assert.match(await get(strip.port), /":path","\/a\/b\?q=1"/);
    const h2s = await h2request(strip.port, { ':path': '/x#y' });
    assert.equal(jsonHeaders(h2s.body)[':path'], '/x');
    assert.match(await get(keep.port), /":path","\/a\/b\?q=1#frag"/);
  } finally {
    await reject.close();
    await strip.close();
    await keep.close();
  }
});

test('original_ip_detection_extensions: custom_header (trusted or not, rejecting when absent) and xff, in order', { timeout: 10_000 }, async () => {
  const custom = (extra: Record<string, unknown>): Record<string, unknown> => ({
    name: 'envoy.http.original_ip_detection.custom_header',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig', header_name: 'x-real-ip', ...extra },
  });
  const xff = { name: 'envoy.http.original_ip_detection.xff', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig', xff_num_trusted_hops: 1 } };
  const trusted = await startProxy({ original_ip_detection_extensions: [custom({ allow_extension_to_set_address_as_trusted: true }), xff] });
  const strict = await startProxy({ original_ip_detection_extensions: [custom({ reject_with_status: { code: 'Forbidden' } })] });
  try {
    // The header's address: the client, and internal (trusted) → x-envoy-* kept.
    let r = await request(`http://127.0.0.1:${trusted.port}/`, { headers: { 'x-real-ip': '10.0.0.5', 'x-envoy-max-retries': '2' } });
    let body = JSON.parse(await r.body.text()) as { headers: [string, string][]; remote: string };
    assert.equal(body.remote, '10.0.0.5');
    assert.equal(Object.fromEntries(body.headers)['x-envoy-max-retries'], '2');
    // No header: the next extension, xff with one trusted hop: the address before the last.
    r = await request(`http://127.0.0.1:${trusted.port}/`, { headers: { 'x-forwarded-for': '203.0.113.1,10.9.9.9', 'x-envoy-max-retries': '2' } });
    body = JSON.parse(await r.body.text()) as { headers: [string, string][]; remote: string };
    assert.equal(body.remote, '203.0.113.1');
    assert.equal(Object.fromEntries(body.headers)['x-envoy-max-retries'], undefined, 'external: x-envoy-* removed');
    // Untrusted custom header: the address is the client, but the request stays external.
    r = await request(`http://127.0.0.1:${strict.port}/`, { headers: { 'x-real-ip': '10.0.0.5', 'x-envoy-max-retries': '2' } });
    body = JSON.parse(await r.body.text()) as { headers: [string, string][]; remote: string };
    assert.equal(body.remote, '10.0.0.5');
    assert.equal(Object.fromEntries(body.headers)['x-envoy-max-retries'], undefined);
    // reject_with_status when the header is missing or not an address.
    assert.equal((await request(`http://127.0.0.1:${strict.port}/`)).statusCode, 403);
    assert.equal((await request(`http://127.0.0.1:${strict.port}/`, { headers: { 'x-real-ip': 'nope' } })).statusCode, 403);
  } finally {
    await trusted.close();
    await strict.close();
  }
});

test('scheme_header_transformation (scheme_to_overwrite) and append_x_forwarded_port', { timeout: 10_000 }, async () => {
  const p = await startProxy({ scheme_header_transformation: { scheme_to_overwrite: 'https' }, use_remote_address: true, append_x_forwarded_port: true });
  try {
    const r = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-forwarded-port': '1' } });
    const h = jsonHeaders(await r.body.text());
    assert.equal(h[':scheme'], 'https');
    assert.equal(h['x-forwarded-proto'], 'http', 'x-forwarded-proto still says how the client connected');
    assert.equal(h['x-forwarded-port'], String(p.port), 'the client-supplied port is replaced (no trusted hops)');
  } finally {
    await p.close();
  }
});

test('Referer: kept when one valid URL (absolute or relative); dropped when repeated, with a fragment or userinfo, or not a URL', { timeout: 10_000 }, async () => {
  const p = await startProxy({});
  const seen = async (lines: string[]): Promise<string[]> => {
    const raw = await rawExchange(p.port, `GET / HTTP/1.1\r\nhost: a\r\n${lines.map((l) => `referer: ${l}\r\n`).join('')}connection: close\r\n\r\n`);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { headers: [string, string][] };
    return body.headers.filter(([n]) => n === 'referer').map(([, v]) => v);
  };
  try {
    assert.deepEqual(await seen(['https://shop.example/cart?x=1']), ['https://shop.example/cart?x=1']);
    assert.deepEqual(await seen(['/relative/page']), ['/relative/page']);
    assert.deepEqual(await seen(['https://a.example/', 'https://b.example/']), []);
    assert.deepEqual(await seen(['https://a.example/#section']), []);
    assert.deepEqual(await seen(['https://user:pw@a.example/']), []);
    assert.deepEqual(await seen(['javascript:alert(1)']), []);
  } finally {
    await p.close();
  }
});

test('HTTP/1.1 absolute-form targets: the URL\'s authority replaces Host and its scheme is :scheme; the path is kept as sent; a bad target is 400', { timeout: 10_000 }, async () => {
  const p = await startProxy({});
  const off = await startProxy({ http_protocol_options: { allow_absolute_url: false } });
  const echo = (raw: string): Record<string, string> => jsonHeaders(raw.slice(raw.indexOf('\r\n\r\n') + 4));
  try {
    let h = echo(await rawExchange(p.port, 'GET http://Other.Example:8080/a/../b%2F?x=1 HTTP/1.1\r\nhost: ignored\r\nconnection: close\r\n\r\n'));
    assert.equal(h[':authority'], 'Other.Example:8080');
    assert.equal(h[':path'], '/a/../b%2F?x=1', 'no URL normalisation without normalize_path');
    assert.equal(h[':scheme'], 'http');
    h = echo(await rawExchange(p.port, 'GET https://svc.example?q HTTP/1.1\r\nconnection: close\r\n\r\n'));
    assert.equal(h[':authority'], 'svc.example');
    assert.equal(h[':path'], '/?q');
    assert.equal(h[':scheme'], 'https');
    assert.match(await rawExchange(p.port, 'GET ftp://x/ HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'), /^HTTP\/1.1 400 /);
    assert.match(await rawExchange(p.port, 'GET http:///nohost HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'), /^HTTP\/1.1 400 /);
    // allow_absolute_url: false leaves the target alone, and a path that does not start with / is refused.
    assert.match(await rawExchange(off.port, 'GET http://x/ HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'), /^HTTP\/1.1 404 /);
    assert.equal(off.counter('downstream_rq_non_relative_path'), 1);
  } finally {
    await p.close();
    await off.close();
  }
});

test('path normalisation, merge_slashes, host port stripping, server header transformation', { timeout: 10_000 }, async () => {
  const p = await startProxy({ normalize_path: true, merge_slashes: true, strip_any_host_port: true, server_name: 'legate-test', via: 'legate' });
  const pass = await startProxy({ server_header_transformation: 'PASS_THROUGH' });
  try {
    const raw = await rawExchange(p.port, 'GET /a/./b/../c//d%7E?q=/../ HTTP/1.1\r\nhost: example.com:8080\r\nconnection: close\r\n\r\n');
    assert.match(raw, /server: legate-test/i);
    assert.match(raw, /via: legate/i);
    assert.match(raw, /":path","\/a\/c\/d~\?q=\/..\/"/);
    assert.match(raw, /":authority","example.com"/);
    const r = await h2request(pass.port, {});
    assert.equal(r.headers['server'], undefined);
  } finally {
    await p.close();
    await pass.close();
  }
});

test('route_config.internal_only_headers are stripped from external requests only; skip_xff_append', { timeout: 10_000 }, async () => {
  const p = await startProxy({ use_remote_address: true, skip_xff_append: true, route_config: { ...ROUTES, internal_only_headers: ['x-secret'] } });
  try {
    // Loopback peer: internal, the header passes.
    let r = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-secret': 's' } });
    let h = jsonHeaders(await r.body.text());
    assert.equal(h['x-secret'], 's');
    assert.equal(h['x-forwarded-for'], undefined, 'skip_xff_append: no XFF added');
    // An external client (XFF from elsewhere): stripped.
    const h2 = await h2request(p.port, { 'x-secret': 's', 'x-forwarded-for': '203.0.113.9' });
    h = jsonHeaders(h2.body);
    assert.equal(h['x-secret'], undefined);
    r = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-secret': 's', 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(jsonHeaders(await r.body.text())['x-secret'], undefined);
  } finally {
    await p.close();
  }
});
