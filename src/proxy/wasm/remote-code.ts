// `vm_config.code.remote`: Wasm modules fetched over HTTP through a bootstrap cluster and verified
// by their sha256, kept in a content-addressed cache (LEGATE_WASM_CACHE, default
// <tmpdir>/legate-wasm-cache/<sha256>.wasm) that the synchronous config parsers on the main thread
// and every worker read. The fetch runs before the bootstrap is validated (the CLI awaits
// prefetchRemoteCode); `--mode validate` never fetches and checks the source's shape only.
// A module delivered by xDS whose code is not cached yet is fetched in the background and the
// update is rejected until it is (the control plane's next push then succeeds).

import { createHash } from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { RemoteDataSource__Output } from '../../generated/envoy/config/core/v3/RemoteDataSource.ts';
import { durationMs } from '../../config/values.ts';
import { logger } from '../log.ts';

const log = logger('wasm');

let validateOnly = false;
/** Failures of the last fetch of each sha256, for the config error. */
const failures = new Map<string, string>();
const inFlight = new Map<string, Promise<void>>();
/** Where each cluster name can be reached (from the bootstrap's static clusters). */
const clusterAddresses = new Map<string, { host: string; port: number }>();

export function cacheDir(): string {
  return process.env.LEGATE_WASM_CACHE ?? join(tmpdir(), 'legate-wasm-cache');
}

/** `--mode validate`: remote sources are checked for shape, never fetched. */
export function setRemoteCodeValidateOnly(v: boolean): void {
  validateOnly = v;
}

export type RemoteCodeLookup = { kind: 'bytes'; bytes: Buffer } | { kind: 'validate-only' } | { kind: 'missing'; reason: string };

/** The cached module for a remote source (verified), or why there is none. */
export function remoteCode(src: RemoteDataSource__Output): RemoteCodeLookup {
  const sha = src.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha)) return { kind: 'missing', reason: `sha256 must be 64 hex digits (got '${src.sha256}')` };
  const file = join(cacheDir(), `${sha}.wasm`);
  if (existsSync(file)) {
    const bytes = readFileSync(file);
    if (createHash('sha256').update(bytes).digest('hex') === sha) return { kind: 'bytes', bytes };
  }
  if (validateOnly) return { kind: 'validate-only' };
  if (!inFlight.has(sha) && src.http_uri) void fetchInto(src).catch(() => undefined);
  return { kind: 'missing', reason: failures.get(sha) ?? `${src.http_uri?.uri ?? '(no uri)'} has not been fetched yet (it is being fetched; a later update will find it)` };
}

function fetchInto(src: RemoteDataSource__Output): Promise<void> {
  const sha = src.sha256.toLowerCase();
  const existing = inFlight.get(sha);
  if (existing) return existing;
  const p = (async () => {
    const uri = src.http_uri!;
    const url = new URL(uri.uri);
    const target = uri.cluster ? clusterAddresses.get(uri.cluster) : undefined;
    if (uri.cluster && !target) throw new Error(`cluster '${uri.cluster}' has no static address to fetch from`);
    const timeout = durationMs(uri.timeout, 5000);
    const bytes = await get(target?.host ?? url.hostname, target?.port ?? Number(url.port || 80), `${url.pathname}${url.search}`, url.host, timeout > 0 ? timeout : 5000, uri.uri);
    const got = createHash('sha256').update(bytes).digest('hex');
    if (got !== sha) throw new Error(`${uri.uri}: sha256 is ${got}, the config expects ${sha}`);
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = join(cacheDir(), `${sha}.${process.pid}.tmp`);
    writeFileSync(tmp, bytes);
    renameSync(tmp, join(cacheDir(), `${sha}.wasm`));
    failures.delete(sha);
    log.info(`fetched ${uri.uri} (${bytes.length} bytes, sha256 ${sha})`);
  })().catch((e: unknown) => {
    const why = `fetching failed: ${e instanceof Error ? e.message : String(e)}`;
    failures.set(sha, why);
    log.error(`wasm code.remote: ${why}`);
    throw e;
  }).finally(() => inFlight.delete(sha));
  inFlight.set(sha, p);
  return p;
}

interface RemoteJson {
  readonly sha256?: string;
  readonly http_uri?: { readonly uri?: string; readonly cluster?: string; readonly timeout?: string };
}

/** GET over plain HTTP/1.1 (node:http: fetch would not send our Host), the body as bytes. */
function get(host: string, port: number, path: string, hostHeader: string, timeoutMs: number, uri: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, headers: { host: hostHeader }, timeout: timeoutMs, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${uri} answered ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${uri}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Every `code.remote` of the bootstrap's proto3 JSON (Anys expanded), as a RemoteDataSource. */
function remoteSources(o: unknown, out: RemoteDataSource__Output[] = []): RemoteDataSource__Output[] {
  if (Array.isArray(o)) for (const x of o) remoteSources(x, out);
  else if (o && typeof o === 'object') {
    const rec = o as Record<string, unknown>;
    const remote = (rec.code as { remote?: RemoteJson } | undefined)?.remote;
    if (remote && typeof remote === 'object' && typeof remote.sha256 === 'string' && remote.http_uri?.uri) {
      const t = /^(\d+(?:\.\d+)?)s$/.exec(remote.http_uri.timeout ?? '');
      const ms = t ? Math.round(Number(t[1]) * 1000) : 5000;
      out.push({
        sha256: remote.sha256,
        retry_policy: null,
        http_uri: { uri: remote.http_uri.uri, ...(remote.http_uri.cluster ? { cluster: remote.http_uri.cluster } : {}), timeout: { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 } },
      });
    }
    for (const v of Object.values(rec)) remoteSources(v, out);
  }
  return out;
}

/**
 * Learns the static clusters' addresses, then fetches every remote module the bootstrap names that
 * is not cached yet (in parallel). Failures are remembered for the config errors, not thrown.
 * Wasm configs sit inside Anys (`typed_config`), so `decodedAnys` walks their decoded JSON form.
 */
export async function prefetchRemoteCode(b: Bootstrap__Output, decodedJson: unknown): Promise<void> {
  for (const c of b.static_resources?.clusters ?? []) {
    const ep = c.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint?.address?.socket_address;
    if (ep) clusterAddresses.set(c.name, { host: ep.address, port: Number(ep.port_value) });
  }
  const todo = remoteSources(decodedJson).filter((s) => remoteCode({ ...s, http_uri: null }).kind !== 'bytes');
  await Promise.all(todo.map((s) => fetchInto(s).catch(() => undefined)));
}
