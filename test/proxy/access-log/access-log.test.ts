import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { AccessLog__Output } from '../../../src/generated/envoy/config/accesslog/v3/AccessLog.ts';
import { parseAccessLog, createAccessLogger, reopenAccessLogs, type AccessLogConfig } from '../../../src/proxy/access-log/index.ts';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { ResponseFlag } from '../../../src/proxy/errors.ts';
import type { Result } from '../../../src/config/result.ts';

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'legate-al-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function info(over: Partial<StreamInfo> = {}, headers: [string, string][] = [[':method', 'GET'], [':path', '/x']]): StreamInfo {
  const base = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 5000 }, downstreamLocal: { address: '127.0.0.1', port: 80 }, connectionId: 1, protocol: 'HTTP/1.1' });
  return { ...base, startTime: START, durationMs: 10, responseCode: 200, requestHeaders: HeaderMap.fromPairs(headers), ...over };
}

function accessLog(yaml: string): AccessLog__Output {
  const d = decodeJson<AccessLog__Output>('envoy.config.accesslog.v3.AccessLog', parseYaml(yaml));
  assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.errors));
  return d.value;
}

function parsed(yaml: string): AccessLogConfig {
  const r = parseAccessLog(accessLog(yaml), 'access_log[0]');
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  return r.value;
}

function errorsOf(r: Result<unknown>): string {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.errors.map((e) => `${e.path}: ${e.reason}`).join('\n');
}

function fileLog(file: string, extra = '', filter = ''): string {
  return `
name: envoy.access_loggers.file
${filter}
typed_config:
  "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
  path: ${file}
${extra}`;
}

test('file logger with text_format_source writes lines, read back', async () => {
  const file = path.join(tmp, 'text.log');
  const cfg = parsed(fileLog(file, `  log_format:\n    text_format_source:\n      inline_string: "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\\n"`));
  assert.deepEqual(cfg.sink, { kind: 'file', path: file });
  assert.ok(Object.isFrozen(cfg));
  const l = createAccessLogger(cfg);
  l.log(info());
  l.log(info({ responseCode: 404 }, [[':method', 'POST'], [':path', '/y']]));
  await l.close();
  assert.equal(fs.readFileSync(file, 'utf8'), 'GET /x 200\nPOST /y 404\n');
});

test('no format: Envoy default format', async () => {
  const file = path.join(tmp, 'default.log');
  const l = createAccessLogger(parsed(fileLog(file)));
  l.log(info({}, [[':method', 'GET'], [':path', '/p'], [':authority', 'h'], ['user-agent', 'ua']]));
  await l.close();
  assert.equal(fs.readFileSync(file, 'utf8'), '[2024-01-02T03:04:05.678Z] "GET /p HTTP/1.1" 200 - 0 0 10 - "-" "ua" "-" "h" "-"\n');
});

test('legacy format field; empty legacy format means the default', async () => {
  const file = path.join(tmp, 'legacy.log');
  const l = createAccessLogger(parsed(fileLog(file, `  format: "%PROTOCOL% %DURATION%\\n"`)));
  l.log(info());
  await l.close();
  assert.equal(fs.readFileSync(file, 'utf8'), 'HTTP/1.1 10\n');
  const d = parsed(fileLog(path.join(tmp, 'legacy2.log'), `  format: ""`));
  assert.match(d.formatter.format(info()), /^\[2024-01-02T03:04:05.678Z\] "GET \/x HTTP\/1.1" 200/);
});

test('json_format file log: one JSON object per line, typed values', async () => {
  const file = path.join(tmp, 'json.log');
  const cfg = parsed(
    fileLog(file, `  log_format:\n    json_format:\n      code: "%RESPONSE_CODE%"\n      method: "%REQ(:METHOD)%"\n      up: "%UPSTREAM_HOST%"\n      nested: {proto: "%PROTOCOL%"}\n    omit_empty_values: false`),
  );
  const l = createAccessLogger(cfg);
  l.log(info());
  l.log(info({ responseCode: 503 }));
  await l.close();
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((s) => JSON.parse(s) as unknown);
  assert.deepEqual(lines, [
    { code: 200, method: 'GET', up: null, nested: { proto: 'HTTP/1.1' } },
    { code: 503, method: 'GET', up: null, nested: { proto: 'HTTP/1.1' } },
  ]);
});

test('two loggers on one path share the stream; the file closes with the last one', async () => {
  const file = path.join(tmp, 'shared.log');
  const a = createAccessLogger(parsed(fileLog(file, `  format: "a\\n"`)));
  const b = createAccessLogger(parsed(fileLog(file, `  format: "b\\n"`)));
  a.log(info());
  b.log(info());
  await a.close();
  a.log(info()); // after close: dropped
  b.log(info());
  await b.close();
  assert.equal(fs.readFileSync(file, 'utf8'), 'a\nb\nb\n');
});

test('reopenAccessLogs: rotation moves new lines to a fresh file', async () => {
  const file = path.join(tmp, 'rotate.log');
  const l = createAccessLogger(parsed(fileLog(file, `  format: "%RESPONSE_CODE%\\n"`)));
  l.log(info({ responseCode: 201 }));
  await new Promise((r) => setTimeout(r, 20));
  fs.renameSync(file, file + '.1');
  await reopenAccessLogs();
  l.log(info({ responseCode: 202 }));
  await l.close();
  assert.equal(fs.readFileSync(file + '.1', 'utf8'), '201\n');
  assert.equal(fs.readFileSync(file, 'utf8'), '202\n');
});

test('stdout and stderr loggers, and a file logger on /dev/stdout, in a child process', () => {
  const src = path.resolve('src');
  const script = path.join(tmp, 'child.ts');
  fs.writeFileSync(
    script,
    `
import { decodeJson } from '${src}/config/decode.ts';
import { parseAccessLog, createAccessLogger } from '${src}/proxy/access-log/index.ts';
import { newStreamInfo } from '${src}/proxy/http/stream-info.ts';
const i = newStreamInfo({ downstreamRemote: { address: '::1', port: 1 }, downstreamLocal: { address: '::1', port: 2 }, connectionId: 1, protocol: 'HTTP/2' });
for (const [t, extra] of [
  ['stream.v3.StdoutAccessLog', { log_format: { text_format_source: { inline_string: 'out %DOWNSTREAM_REMOTE_ADDRESS%\\n' } } }],
  ['stream.v3.StderrAccessLog', { log_format: { text_format_source: { inline_string: 'err %PROTOCOL%\\n' } } }],
  ['file.v3.FileAccessLog', { path: '/dev/stdout', log_format: { text_format_source: { inline_string: 'file %PROTOCOL%\\n' } } }],
]) {
  const al = decodeJson('envoy.config.accesslog.v3.AccessLog', { name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.' + t, ...extra } });
  if (!al.ok) throw new Error(JSON.stringify(al.errors));
  const cfg = parseAccessLog(al.value as never, 'a');
  if (!cfg.ok) throw new Error(JSON.stringify(cfg.errors));
  const l = createAccessLogger(cfg.value);
  l.log(i);
  await l.close();
}
`,
  );
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  assert.equal(out, 'out [::1]:1\nfile HTTP/2\n');
});

test('filters: status_code_filter with runtime default', () => {
  const cfg = parsed(fileLog(path.join(tmp, 'f1.log'), '', 'filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 400, runtime_key: access_log.min_status}}}}'));
  assert.equal(cfg.filter!.evaluate(info({ responseCode: 200 })), false);
  assert.equal(cfg.filter!.evaluate(info({ responseCode: 400 })), true);
  assert.equal(cfg.filter!.evaluate(info({ responseCode: 503 })), true);
  const eq = parsed(fileLog(path.join(tmp, 'f1.log'), '', 'filter: {status_code_filter: {comparison: {op: EQ, value: {default_value: 0, runtime_key: k}}}}'));
  assert.equal(eq.filter!.evaluate(info({ responseCode: undefined })), true);
});

test('filters: duration_filter, not_health_check_filter, runtime_filter', () => {
  const d = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {duration_filter: {comparison: {op: LE, value: {default_value: 100, runtime_key: k}}}}'));
  assert.equal(d.filter!.evaluate(info({ durationMs: 100.9 })), true);
  assert.equal(d.filter!.evaluate(info({ durationMs: 101 })), false);
  const nh = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {not_health_check_filter: {}}'));
  assert.equal(nh.filter!.evaluate(info()), true);
  const all = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {runtime_filter: {runtime_key: k, percent_sampled: {numerator: 100, denominator: HUNDRED}}}'));
  const none = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {runtime_filter: {runtime_key: k}}'));
  for (let k = 0; k < 20; k++) {
    assert.equal(all.filter!.evaluate(info()), true);
    assert.equal(none.filter!.evaluate(info()), false);
  }
});

test('filters: response_flag_filter with and without flags; unknown flag is an error', () => {
  const any = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {response_flag_filter: {}}'));
  const some = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {response_flag_filter: {flags: [UH, UF]}}'));
  const plain = info();
  const uh = info({ responseFlags: new Set([ResponseFlag.NoHealthyUpstream]) });
  const nr = info({ responseFlags: new Set([ResponseFlag.NoRouteFound]) });
  assert.deepEqual([any.filter!.evaluate(plain), any.filter!.evaluate(uh), any.filter!.evaluate(nr)], [false, true, true]);
  assert.deepEqual([some.filter!.evaluate(plain), some.filter!.evaluate(uh), some.filter!.evaluate(nr)], [false, true, false]);
  // The decoder's PGV check rejects unknown flags too; the parser checks on its own for hand-built config.
  const al = { ...accessLog(fileLog(path.join(tmp, 'f.log'))), filter: { response_flag_filter: { flags: ['UH', 'XX'] }, filter_specifier: 'response_flag_filter' as const } };
  const bad = parseAccessLog(al, 'access_log[0]');
  assert.match(errorsOf(bad), /access_log\[0\]\.filter\.response_flag_filter\.flags\[1\]: unknown response flag 'XX'/);
});

test('filters: and / or / header_filter', () => {
  const f = parsed(
    fileLog(
      path.join(tmp, 'f.log'),
      '',
      `filter:
  or_filter:
    filters:
    - and_filter:
        filters:
        - header_filter: {header: {name: x-debug, exact_match: "1"}}
        - status_code_filter: {comparison: {op: GE, value: {default_value: 200, runtime_key: k}}}
    - header_filter: {header: {name: user-agent, prefix_match: "curl/"}}
    - header_filter: {header: {name: x-trace, present_match: true}}
    - header_filter: {header: {name: :path, safe_regex_match: {regex: "/admin/.*"}}}
    - header_filter: {header: {name: x-env, string_match: {exact: PROD, ignore_case: true}, invert_match: true}}`,
    ),
  );
  const ev = (h: [string, string][]): boolean => f.filter!.evaluate(info({}, [[':path', '/x'], ...h]));
  assert.equal(ev([]), false);
  assert.equal(ev([['x-debug', '1']]), true);
  assert.equal(ev([['x-debug', '2']]), false);
  assert.equal(ev([['user-agent', 'curl/8']]), true);
  assert.equal(ev([['user-agent', 'wget']]), false);
  assert.equal(ev([['x-trace', '']]), true);
  assert.equal(f.filter!.evaluate(info({}, [[':path', '/admin/users']])), true);
  assert.equal(f.filter!.evaluate(info({}, [[':path', '/xadmin/users']])), false);
  assert.equal(ev([['x-env', 'prod']]), false);
  assert.equal(ev([['x-env', 'staging']]), true);
});

test('filters: header_filter matches as routes do (RE2 regex, int64 ranges, empty exact_match); a stream without request headers is an empty map', () => {
  const one = (header: string): AccessLogConfig => parsed(fileLog(path.join(tmp, 'f.log'), '', `filter: {header_filter: {header: ${header}}}`));
  const ev = (f: AccessLogConfig, h: [string, string][] | undefined): boolean =>
    f.filter!.evaluate(h === undefined ? { ...info(), requestHeaders: undefined } : info({}, h));
  // RE2's leading (?i), which a JavaScript RegExp does not take.
  const re = one('{name: x-env, safe_regex_match: {regex: "(?i)prod-[0-9]+"}}');
  assert.equal(ev(re, [['x-env', 'PROD-12']]), true);
  assert.equal(ev(re, [['x-env', 'prod-12x']]), false);
  // int64 bounds past 2^53, and Envoy's half-open [start, end).
  const range = one('{name: x-n, range_match: {start: "9007199254740993", end: "9007199254740995"}}');
  assert.equal(ev(range, [['x-n', '9007199254740993']]), true);
  assert.equal(ev(range, [['x-n', '9007199254740992']]), false);
  assert.equal(ev(range, [['x-n', '9007199254740995']]), false);
  assert.equal(ev(range, [['x-n', '12abc']]), false);
  // exact_match "" matches any value of a present header.
  const anyValue = one('{name: x-a, exact_match: ""}');
  assert.equal(ev(anyValue, [['x-a', 'whatever']]), true);
  assert.equal(ev(anyValue, []), false);
  // Repeated headers are one comma-joined value.
  assert.equal(ev(one('{name: x-r, exact_match: "a,b"}'), [['x-r', 'a'], ['x-r', 'b']]), true);
  // tcp_proxy's streams have no request headers: absence checks pass, value matchers fail, inverted or not.
  assert.equal(ev(one('{name: x-a, present_match: false}'), undefined), true);
  assert.equal(ev(one('{name: x-a, present_match: true}'), undefined), false);
  assert.equal(ev(one('{name: x-a, exact_match: v, invert_match: true}'), undefined), false);
  assert.equal(ev(one('{name: x-a, exact_match: v, invert_match: true, treat_missing_header_as_empty: true}'), undefined), true);
  // A bad regex is named with its path.
  const bad = parseAccessLog(accessLog(fileLog(path.join(tmp, 'f.log'), '', 'filter: {header_filter: {header: {name: x-a, safe_regex_match: {regex: "a(b"}}}}')), 'access_log[0]');
  assert.match(errorsOf(bad), /^access_log\[0\]\.filter\.header_filter\.header\.safe_regex_match\.regex: invalid regex "a\(b"/);
});

test('filters: grpc_status_filter reads grpc-status, else maps the HTTP status', () => {
  const f = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {grpc_status_filter: {statuses: [UNAVAILABLE, INTERNAL]}}'));
  assert.equal(f.filter!.evaluate(info({ responseTrailers: HeaderMap.fromPairs([['grpc-status', '14']]) })), true);
  assert.equal(f.filter!.evaluate(info({ responseHeaders: HeaderMap.fromPairs([['grpc-status', '0']]) })), false);
  assert.equal(f.filter!.evaluate(info({ responseCode: 503 })), true);
  assert.equal(f.filter!.evaluate(info({ responseCode: 200 })), false);
  const ex = parsed(fileLog(path.join(tmp, 'f.log'), '', 'filter: {grpc_status_filter: {statuses: [OK], exclude: true}}'));
  assert.equal(ex.filter!.evaluate(info({ responseTrailers: HeaderMap.fromPairs([['grpc-status', '0']]) })), false);
  assert.equal(ex.filter!.evaluate(info({ responseTrailers: HeaderMap.fromPairs([['grpc-status', '2']]) })), true);
});

test('filtered-out streams are not written', async () => {
  const file = path.join(tmp, 'filtered.log');
  const l = createAccessLogger(parsed(fileLog(file, `  format: "%RESPONSE_CODE%\\n"`, 'filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 500, runtime_key: k}}}}')));
  for (const code of [200, 502, 404, 503]) l.log(info({ responseCode: code }));
  await l.close();
  assert.equal(fs.readFileSync(file, 'utf8'), '502\n503\n');
});

test('errors: unknown logger type, bad operator, unwritable path, bad filters', () => {
  const unknown = accessLog(`
name: envoy.access_loggers.http_grpc
typed_config:
  "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig
  common_config: {log_name: x, transport_api_version: V3, grpc_service: {envoy_grpc: {cluster_name: c}}}`);
  assert.match(errorsOf(parseAccessLog(unknown, 'al')), /al\.typed_config: .*envoy\.access_loggers\.http_grpc.*HttpGrpcAccessLogConfig/);
  assert.match(errorsOf(parseAccessLog(accessLog(fileLog(path.join(tmp, 'e.log'), `  format: "%NOT_A_THING%"`)), 'al')), /al\.typed_config\.format: .*NOT_A_THING/);
  assert.match(
    errorsOf(parseAccessLog(accessLog(fileLog(path.join(tmp, 'e.log'), `  log_format: {text_format_source: {inline_string: "%REQ%"}}`)), 'al')),
    /al\.typed_config\.log_format\.text_format_source: /,
  );
  assert.match(errorsOf(parseAccessLog(accessLog(fileLog(path.join(tmp, 'no/such/dir/x.log'))), 'al')), /al\.typed_config\.path: unable to open access log file/);
  const one = { not_health_check_filter: {}, filter_specifier: 'not_health_check_filter' as const };
  const lonely = { ...accessLog(fileLog(path.join(tmp, 'e.log'))), filter: { and_filter: { filters: [one] }, filter_specifier: 'and_filter' as const } };
  assert.match(errorsOf(parseAccessLog(lonely, 'al')), /al\.filter\.and_filter\.filters: .*at least 2/);
  assert.match(errorsOf(parseAccessLog(accessLog(fileLog(path.join(tmp, 'e.log'), '', 'filter: {metadata_filter: {}}')), 'al')), /al\.filter\.metadata_filter: .*not supported/);
  assert.match(
    errorsOf(parseAccessLog(accessLog(fileLog(path.join(tmp, 'e.log'), '', 'filter: {header_filter: {header: {name: x, safe_regex_match: {regex: "("}}}}')), 'al')),
    /al\.filter\.header_filter\.header\.safe_regex_match\.regex: invalid regex/,
  );
  assert.match(errorsOf(parseAccessLog({ name: 'x', filter: null }, 'al')), /al\.typed_config: access log 'x' requires typed_config/);
});
