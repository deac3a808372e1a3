// ext_authz's HTTP authorization service (Envoy's RawHttpClientImpl): the check is an HTTP request
// to the service's cluster with the original method, `path_prefix` + the original path, the
// original :authority and Authorization, the headers `allowed_headers` names, `headers_to_add`, and
// the buffered body. 200 allows, with the response headers `allowed_upstream_headers` (set) and
// `allowed_upstream_headers_to_append` (added) names applied to the request, those
// `allowed_client_headers_on_success` names added to the response, and x-envoy-auth-headers-to-remove
// removed from the request. A 5xx or a failed call is an error; any other status denies, with the
// service's body and the headers `allowed_client_headers` names (all of them when it names none).

import { compileStringMatcher, type StringPredicate } from '../../../proxy/http/matchers.ts';
import { joinPath, type ConfigError } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import { startHttpCall } from '../../../proxy/wasm/http-call.ts';
import type { StringMatcher__Output } from '../../../generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';
import type { CheckVerdict, HeaderEdit } from '../../common/ext_authz/check-request.ts';

type ListStringMatcher = { readonly patterns: readonly StringMatcher__Output[] } | null | undefined;

export interface HttpService__Output {
  readonly server_uri: { readonly uri: string; readonly cluster: string; readonly timeout: Duration__Output | null } | null;
  readonly path_prefix: string;
  readonly authorization_request: { readonly allowed_headers: ListStringMatcher; readonly headers_to_add: ReadonlyArray<{ readonly key: string; readonly value: string }> } | null;
  readonly authorization_response: {
    readonly allowed_upstream_headers: ListStringMatcher;
    readonly allowed_upstream_headers_to_append: ListStringMatcher;
    readonly allowed_client_headers: ListStringMatcher;
    readonly allowed_client_headers_on_success: ListStringMatcher;
    readonly dynamic_metadata_from_headers: ListStringMatcher;
  } | null;
}

export interface HttpServiceConfig {
  readonly cluster: string;
  readonly timeoutMs: number;
  readonly pathPrefix: string;
  /** Request headers sent to the service besides :method, :path, :authority and authorization. */
  readonly allowedHeaders: StringPredicate;
  readonly headersToAdd: ReadonlyArray<readonly [string, string]>;
  readonly upstreamSet: StringPredicate;
  readonly upstreamAppend: StringPredicate;
  /** Denied replies: undefined = every header but :authority (Envoy's default). */
  readonly client: StringPredicate | undefined;
  readonly clientOnSuccess: StringPredicate;
}

const NONE: StringPredicate = () => false;
const ALWAYS_SENT = new Set([':method', ':path', ':authority', 'authorization']);
/** With allowed_client_headers set, these are always passed on too (Envoy). */
const CLIENT_DEFAULTS = new Set([':status', 'content-length', 'www-authenticate', 'location']);
const REMOVE_HEADER = 'x-envoy-auth-headers-to-remove';

function matcherList(l: ListStringMatcher, path: string, errors: ConfigError[]): StringPredicate | undefined {
  const preds: StringPredicate[] = [];
  (l?.patterns ?? []).forEach((m, i) => {
    const r = compileStringMatcher(m, joinPath(path, `patterns[${i}]`));
    if (r.ok) preds.push(r.value);
    else errors.push(...r.errors);
  });
  return preds.length === 0 ? undefined : (v) => preds.some((p) => p(v));
}

export function parseHttpService(h: HttpService__Output, path: string, errors: ConfigError[]): HttpServiceConfig | undefined {
  const uri = h.server_uri;
  if (!uri) errors.push({ path: joinPath(path, 'server_uri'), reason: 'value is required' });
  else if (!uri.cluster) errors.push({ path: joinPath(path, 'server_uri.cluster'), reason: 'value length must be at least 1 characters' });
  if (uri && !uri.timeout) errors.push({ path: joinPath(path, 'server_uri.timeout'), reason: 'value is required' });
  const req = h.authorization_request;
  const res = h.authorization_response;
  const rp = joinPath(path, 'authorization_response');
  if (res?.dynamic_metadata_from_headers?.patterns.length) errors.push({ path: joinPath(rp, 'dynamic_metadata_from_headers'), reason: 'dynamic metadata is not supported yet' });
  const cfg: HttpServiceConfig = {
    cluster: uri?.cluster ?? '',
    timeoutMs: durationMs(uri?.timeout, 0),
    pathPrefix: h.path_prefix,
    allowedHeaders: matcherList(req?.allowed_headers, joinPath(path, 'authorization_request.allowed_headers'), errors) ?? NONE,
    headersToAdd: (req?.headers_to_add ?? []).map((x) => [x.key.toLowerCase(), x.value] as const),
    upstreamSet: matcherList(res?.allowed_upstream_headers, joinPath(rp, 'allowed_upstream_headers'), errors) ?? NONE,
    upstreamAppend: matcherList(res?.allowed_upstream_headers_to_append, joinPath(rp, 'allowed_upstream_headers_to_append'), errors) ?? NONE,
    client: matcherList(res?.allowed_client_headers, joinPath(rp, 'allowed_client_headers'), errors),
    clientOnSuccess: matcherList(res?.allowed_client_headers_on_success, joinPath(rp, 'allowed_client_headers_on_success'), errors) ?? NONE,
  };
  return uri ? Object.freeze(cfg) : undefined;
}

/** Headers a local reply takes from the service's denial (never pseudo-headers or framing). */
const NOT_FOR_REPLY = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'server']);

/**
 * Asks the HTTP service; resolves with the verdict, or 'error' (no cluster, failed call, 5xx). The
 * returned `cancel` drops the answer.
 */
export function checkOverHttp(cm: ClusterManager, c: HttpServiceConfig, request: HeaderMap, body: Buffer | undefined, done: (v: CheckVerdict | 'error') => void): { cancel(): void } {
  let cancelled = false;
  const headers: Array<readonly [string, string]> = [];
  request.forEach((k, v) => {
    if (k === 'content-length' || (!ALWAYS_SENT.has(k) && !c.allowedHeaders(k))) return;
    headers.push([k, k === ':path' && c.pathPrefix ? `${c.pathPrefix}${v}` : v]);
  });
  headers.push(['content-length', String(body?.length ?? 0)]);
  for (const [k, v] of c.headersToAdd) {
    for (let i = headers.length - 1; i >= 0; i--) if (headers[i]![0] === k) headers.splice(i, 1);
    headers.push([k, v]);
  }
  const started = startHttpCall(cm, { cluster: c.cluster, headers, body: body ?? Buffer.alloc(0), trailers: [], timeoutMs: c.timeoutMs });
  if (!started.response) {
    queueMicrotask(() => cancelled || done('error'));
    return { cancel: () => void (cancelled = true) };
  }
  started.response.then((r) => {
    if (cancelled) return;
    if (r.status === 0 || r.status >= 500) return done('error');
    if (r.status === 200) {
      const set: HeaderEdit[] = [];
      const remove: string[] = [];
      const responseHeaders: HeaderEdit[] = [];
      for (const [k, v] of r.headers) {
        if (k === REMOVE_HEADER) {
          for (const name of v.split(',')) if (name.trim()) remove.push(name.trim().toLowerCase());
          continue;
        }
        if (c.upstreamSet(k)) set.push({ key: k, value: v, action: 'overwrite' });
        if (c.upstreamAppend(k)) set.push({ key: k, value: v, action: 'add' });
        if (c.clientOnSuccess(k)) responseHeaders.push({ key: k, value: v, action: 'add' });
      }
      return done({ kind: 'ok', headers: set, remove, responseHeaders });
    }
    const client = c.client;
    const reply: HeaderEdit[] = [];
    for (const [k, v] of r.headers) {
      if (k === REMOVE_HEADER || k.startsWith(':') || NOT_FOR_REPLY.has(k)) continue;
      if (client === undefined ? k !== ':authority' : client(k) || CLIENT_DEFAULTS.has(k)) reply.push({ key: k, value: v, action: 'add' });
    }
    done({ kind: 'denied', status: r.status, headers: reply, body: r.body.toString('utf8') });
  });
  return { cancel: () => void (cancelled = true) };
}
