// Envoy's request and response header handling in the connection manager (ConnectionManagerUtility):
// x-forwarded-for / x-forwarded-proto / x-forwarded-port, trusted client address (or the original IP
// detection extensions, original-ip.ts), internal requests, x-envoy-* sanitising, x-request-id, Referer,
// x-forwarded-client-cert (xfcc.ts), #fragment and path normalisation, host port stripping, and
// response `server` / x-request-id / via.
// Request problems come back as a rejection (status + details); nothing here throws.

import net from 'node:net';
import type { HeaderMap } from './headers.ts';
import type { AddressInfo, StreamInfo } from './stream-info.ts';
import type { Cidr, HcmConfig } from './hcm-config.ts';
import { mutateXfcc } from './xfcc.ts';
import { uuid4 } from './request-id.ts';
import { lastAddressFromXff } from './original-ip.ts';
import type { Runtime } from '../runtime.ts';

export interface HeaderRejection {
  readonly status: number;
  readonly details: string;
  readonly body: string;
  /** Location for a redirect (UNESCAPE_AND_REDIRECT). */
  readonly location?: string;
}

/** x-envoy-* request headers removed from external requests (Envoy's cleanInternalHeaders). */
const ENVOY_INTERNAL_ONLY: ReadonlySet<string> = new Set([
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
]);
/** Removed only from edge requests (use_remote_address and an external client). */
const ENVOY_EDGE_ONLY: ReadonlySet<string> = new Set(['x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node']);

function parseIp(addr: string): { v6: boolean; value: bigint } | undefined {
  let a = addr;
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) a = a.slice(7);
  if (net.isIPv4(a)) {
    let v = 0n;
    for (const part of a.split('.')) v = (v << 8n) | BigInt(Number(part));
    return { v6: false, value: v };
  }
  if (!net.isIPv6(a)) return undefined;
  const [head = '', tail = ''] = a.includes('::') ? a.split('::') : [a, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  // An embedded IPv4 tail counts as two groups.
  const groups = (xs: string[]): number[] =>
    xs.flatMap((g) => (g.includes('.') ? ((n) => [Number((n >> 16n) & 0xffffn), Number(n & 0xffffn)])(parseIp(g)?.value ?? 0n) : [parseInt(g, 16)]));
  const hg = groups(h);
  const tg = groups(t);
  const all = a.includes('::') ? [...hg, ...new Array<number>(8 - hg.length - tg.length).fill(0), ...tg] : hg;
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(g);
  return { v6: true, value: v };
}

/** Parses `10.0.0.0` + 8 into a Cidr; undefined when invalid. */
export function parseCidr(prefix: string, len: number): Cidr | undefined {
  const ip = parseIp(prefix);
  if (!ip || len < 0 || len > (ip.v6 ? 128 : 32)) return undefined;
  return { v6: ip.v6, base: ip.value, prefixLen: len };
}

const DEFAULT_INTERNAL: readonly Cidr[] = [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['127.0.0.0', 8],
  ['::1', 128],
  ['fc00::', 7],
].map(([p, l]) => parseCidr(p as string, l as number)!);

const LOOPBACK: readonly Cidr[] = [parseCidr('127.0.0.0', 8)!, parseCidr('::1', 128)!];

/** Per CIDR list, addresses already checked (bounded: cleared when full). */
const cidrMemo = new WeakMap<readonly Cidr[], Map<string, boolean>>();
const CIDR_MEMO_MAX = 4096;

/** Whether `address` is in one of `cidrs`; remembered per list, as a few client addresses repeat on every request. */
export function inCidrs(address: string, cidrs: readonly Cidr[]): boolean {
  let memo = cidrMemo.get(cidrs);
  if (memo === undefined) cidrMemo.set(cidrs, (memo = new Map()));
  let r = memo.get(address);
  if (r === undefined) {
    r = matchCidrs(address, cidrs);
    if (memo.size >= CIDR_MEMO_MAX) memo.clear();
    memo.set(address, r);
  }
  return r;
}

function matchCidrs(address: string, cidrs: readonly Cidr[]): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  for (const c of cidrs) {
    if (c.v6 !== ip.v6) continue;
    const bits = BigInt(ip.v6 ? 128 : 32);
    const shift = bits - BigInt(c.prefixLen);
    if (ip.value >> shift === c.base >> shift) return true;
  }
  return false;
}

const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding']);

/** Removes connection-specific headers (Envoy: before the filter chain); `upgrade` only when not upgrading. */
export function removeHopByHop(h: HeaderMap, upgrading: boolean): void {
  h.removeAll(HOP_BY_HOP);
  if (!upgrading) h.remove('upgrade');
  else h.set('connection', 'upgrade');
  const te = h.get('te');
  if (te !== undefined) {
    if (te.split(',').some((t) => t.trim().toLowerCase() === 'trailers')) h.set('te', 'trailers');
    else h.remove('te');
  }
}

/** Headers with `_` in the name: 'ok', or the names dropped, or 'reject'. */
export function checkUnderscores(h: HeaderMap, action: HcmConfig['headersWithUnderscoresAction']): 'ok' | 'reject' | number {
  if (action === 'ALLOW') return 'ok';
  let found: string[] | undefined;
  h.forEach((k) => {
    if (k.includes('_') && k[0] !== ':') (found ??= []).push(k);
  });
  if (!found) return 'ok';
  if (action === 'REJECT_REQUEST') return 'reject';
  for (const k of found) h.remove(k);
  return found.length;
}

/** RFC 3986 remove_dot_segments plus Envoy's canonicalisation of %2E/%2e and unreserved escapes. */
export function normalizePathRfc3986(path: string): string | undefined {
  const q = path.indexOf('?');
  let p = q < 0 ? path : path.slice(0, q);
  const rest = q < 0 ? '' : path.slice(q);
  if (!p.startsWith('/')) return undefined;
  if (p.includes('\\')) p = p.replaceAll('\\', '/');
  // Decode percent-encoded unreserved characters (ALPHA / DIGIT / - . _ ~), as Chromium's canonicaliser does.
  p = p.replace(/%([0-9a-fA-F]{2})/g, (m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
  });
  const out: string[] = [];
  const segs = p.split('/');
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return '/' + out.join('/') + rest;
}

function mergeSlashes(path: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p.replace(/\/{2,}/g, '/') + (q < 0 ? '' : path.slice(q));
}

const ESCAPED_SLASH = /%2f|%5c/i;

function stripPort(h: HeaderMap, cfg: HcmConfig, localPort: number): void {
  const host = h.get(':authority');
  if (!host) return;
  let colon = host.lastIndexOf(':');
  if (colon < 0 || (host.startsWith('[') && host.lastIndexOf(']') > colon)) colon = -1;
  let v = host;
  if (colon >= 0) {
    const port = Number(host.slice(colon + 1));
    if (cfg.stripAnyHostPort || (cfg.stripMatchingHostPort && port === localPort)) v = host.slice(0, colon);
  }
  if (cfg.stripTrailingHostDot) {
    const c = v.lastIndexOf(':');
    const name = c >= 0 && !v.startsWith('[') ? v.slice(0, c) : v;
    if (name.endsWith('.')) v = name.slice(0, -1) + v.slice(name.length);
  }
  if (v !== host) h.set(':authority', v);
}

/** Per-request inputs the header logic needs from the connection. */
export interface RequestContext {
  readonly cfg: HcmConfig;
  readonly info: StreamInfo;
  /** Connection peer. */
  readonly remote: AddressInfo;
  /** The connection is TLS: x-forwarded-proto https. (The session itself is info.downstreamTls.) */
  readonly tls: boolean;
  readonly localPort: number;
  readonly localAddress: string;
  /** Runtime flags (the #fragment guards); absent -> Envoy's defaults. */
  readonly runtime?: Runtime;
}

/**
 * Envoy's mutateRequestHeaders + path checks, in place. Returns a rejection to answer locally
 * instead, or undefined. Sets info.downstreamRemote (trusted client address) and info.requestId.
 */
export function mutateRequestHeaders(h: HeaderMap, ctx: RequestContext): HeaderRejection | undefined {
  const { cfg, info } = ctx;
  const scheme = ctx.tls ? 'https' : 'http';
  if (cfg.schemeToOverwrite !== undefined) h.set(':scheme', cfg.schemeToOverwrite);
  if (cfg.schemeMatchUpstream) info.schemeMatchUpstream = true;
  let finalRemote: string | undefined;
  let single = true;
  // Repeated x-forwarded-for lines count as one list (Envoy joins them): reading only the first
  // would let a client hide addresses from xff_num_trusted_hops or from the internal check.
  let xff = h.getJoined('x-forwarded-for');
  if (xff !== undefined && xff !== h.get('x-forwarded-for')) h.set('x-forwarded-for', xff);
  if (cfg.useRemoteAddress) {
    // Internal-address checks are only trusted when nobody before us wrote XFF.
    single = xff === undefined;
    finalRemote = ctx.remote.address;
    if (cfg.xffNumTrustedHops > 0) {
      const r = lastAddressFromXff(xff, cfg.xffNumTrustedHops - 1);
      if (r.address) finalRemote = r.address;
    }
    if (!cfg.skipXffAppend && ctx.remote.address) {
      // Envoy appends its own address for a loopback peer.
      const a = inCidrs(ctx.remote.address, LOOPBACK) ? ctx.localAddress || ctx.remote.address : ctx.remote.address;
      xff = xff ? `${xff},${a}` : a;
      h.set('x-forwarded-for', xff);
    }
    // The previous hop is not trusted to say which scheme (or port) the client used.
    if (cfg.xffNumTrustedHops === 0 || !h.has('x-forwarded-proto')) h.set('x-forwarded-proto', scheme);
    if (cfg.appendXForwardedPort && ctx.localPort > 0 && (cfg.xffNumTrustedHops === 0 || !h.has('x-forwarded-port'))) h.set('x-forwarded-port', String(ctx.localPort));
  } else if (cfg.originalIpDetection) {
    // original_ip_detection_extensions, in order: the first address found, or a rejection.
    single = false;
    for (const detect of cfg.originalIpDetection) {
      const r = detect(h);
      if (r.rejectStatus !== undefined) return { status: r.rejectStatus, details: 'rejecting_because_detection_failed', body: '' };
      if (r.address !== undefined) {
        finalRemote = r.address;
        single = r.trusted;
        break;
      }
    }
  } else {
    const r = lastAddressFromXff(xff, cfg.xffNumTrustedHops);
    finalRemote = r.address;
    single = r.single;
  }
  if (!h.has('x-forwarded-proto')) h.set('x-forwarded-proto', scheme);
  if (finalRemote !== undefined && finalRemote !== info.downstreamRemote.address) {
    info.downstreamRemote = { address: finalRemote, port: finalRemote === ctx.remote.address ? ctx.remote.port : 0 };
  }

  const internal = single && finalRemote !== undefined && inCidrs(finalRemote, cfg.internalAddresses ?? DEFAULT_INTERNAL);
  const edge = !internal && cfg.useRemoteAddress;
  if (edge) h.removeAll(ENVOY_EDGE_ONLY);
  if (internal) {
    h.set('x-envoy-internal', 'true');
  } else {
    h.remove('x-envoy-internal');
    h.removeAll(ENVOY_INTERNAL_ONLY);
    // RouteConfiguration.internal_only_headers: stripped from requests that are not internal.
    const routeOnly = cfg.routes.table?.internalOnlyHeaders;
    if (routeOnly) for (let i = 0; i < routeOnly.length; i++) h.remove(routeOnly[i]!);
    if (cfg.useRemoteAddress && finalRemote !== undefined) h.set('x-envoy-external-address', finalRemote);
  }

  if (cfg.generateRequestId) {
    const existing = h.get('x-request-id');
    if (existing === undefined || existing === '' || (edge && !cfg.preserveExternalRequestId)) h.set('x-request-id', uuid4());
  }
  info.requestId = h.get('x-request-id');

  if (cfg.via) {
    const prev = h.get('via');
    h.set('via', prev ? `${prev}, ${cfg.via}` : cfg.via);
  }
  // Envoy drops a Referer that repeats or is no valid URL (absolute or relative, no fragment or userinfo).
  const referer = h.get('referer');
  if (referer !== undefined && (h.getAll('referer').length > 1 || !validReferer(referer))) h.remove('referer');
  if (!cfg.proxy100Continue && h.get('expect')?.toLowerCase() === '100-continue') h.remove('expect');
  mutateXfcc(h, cfg.forwardClientCertDetails, cfg.setCurrentClientCertDetails, info.downstreamTls);

  // Path checks and normalisation (Envoy: maybeNormalizePath).
  const path = h.get(':path');
  if (path !== undefined && h.get(':method') !== 'CONNECT') {
    if (!path.startsWith('/')) {
      if (path === '*' && h.get(':method') === 'OPTIONS') return undefined;
      return { status: 404, details: 'absolute_path_rejected', body: '' };
    }
    let p = path;
    // A #fragment is no part of a request target (RFC 3986 3.5, RFC 9112 3.2): Envoy rejects it,
    // or with its runtime guards off strips it (Istio's setting) or, unsafely, keeps it.
    const hash = p.indexOf('#');
    if (hash >= 0) {
      if (ctx.runtime?.getBoolean('envoy.reloadable_features.http_reject_path_with_fragment', true) ?? true) return { status: 400, details: 'path_normalization_failed', body: '' };
      if (ctx.runtime?.getBoolean('envoy.reloadable_features.http_strip_fragment_from_path_unsafe_if_disabled', true) ?? true) p = p.slice(0, hash);
    }
    if (cfg.pathWithEscapedSlashesAction !== 'KEEP_UNCHANGED') {
      const q = p.indexOf('?');
      const pathOnly = q < 0 ? p : p.slice(0, q);
      if (ESCAPED_SLASH.test(pathOnly)) {
        if (cfg.pathWithEscapedSlashesAction === 'REJECT_REQUEST') return { status: 400, details: 'path_normalization_failed', body: '' };
        const un = pathOnly.replace(/%2f/gi, '/').replace(/%5c/gi, '\\') + (q < 0 ? '' : p.slice(q));
        if (cfg.pathWithEscapedSlashesAction === 'UNESCAPE_AND_REDIRECT') {
          const np = normalizeFull(un, cfg) ?? un;
          return { status: 307, details: 'path_normalization_failed', body: '', location: np };
        }
        p = un;
      }
    }
    const np = normalizeFull(p, cfg);
    if (np === undefined) return { status: 400, details: 'path_normalization_failed', body: '' };
    if (np !== path) h.set(':path', np);
  }
  if (cfg.stripAnyHostPort || cfg.stripMatchingHostPort || cfg.stripTrailingHostDot) stripPort(h, cfg, ctx.localPort);
  return undefined;
}

const ABSOLUTE_URL = /^[a-z][a-z0-9+.-]*:\/\/([^/?#\s]*)[^#\s]*$/i;
/** A relative reference: URI characters only, no ':' before the first '/' (RFC 3986 4.2), no fragment. */
const RELATIVE_REF = /^(?:[^:/?#]*(?:[/?][^#]*)?)$/;
const URI_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

/** Envoy's isValidRefererValue (with partial URLs allowed, its default). */
function validReferer(v: string): boolean {
  const abs = ABSOLUTE_URL.exec(v);
  if (abs) return !abs[1]!.includes('@');
  return URI_CHARS.test(v) && RELATIVE_REF.test(v);
}

function normalizeFull(path: string, cfg: HcmConfig): string | undefined {
  let p: string | undefined = path;
  if (cfg.normalizePath || path.includes('\\')) p = normalizePathRfc3986(p);
  if (p !== undefined && cfg.mergeSlashes) p = mergeSlashes(p);
  return p;
}

/** Envoy's mutateResponseHeaders + server header, after the encoder filters. */
export function mutateResponseHeaders(h: HeaderMap, cfg: HcmConfig, req: HeaderMap | undefined, upgrading: boolean): void {
  h.removeAll(HOP_BY_HOP);
  if (upgrading) h.set('connection', 'upgrade');
  else h.remove('upgrade');
  if (req !== undefined && cfg.alwaysSetRequestIdInResponse) {
    const rid = req.get('x-request-id');
    if (rid !== undefined) h.set('x-request-id', rid);
  }
  if (cfg.via) {
    const prev = h.get('via');
    h.set('via', prev ? `${prev}, ${cfg.via}` : cfg.via);
  }
  switch (cfg.serverHeaderTransformation) {
    case 'OVERWRITE':
      h.set('server', cfg.serverName);
      break;
    case 'APPEND_IF_ABSENT':
      if (!h.has('server')) h.set('server', cfg.serverName);
      break;
    case 'PASS_THROUGH':
      break;
  }
}
