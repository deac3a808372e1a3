// Access log filters (envoy.config.accesslog.v3.AccessLogFilter) compiled into predicates over
// StreamInfo. Parsing fails (with the field path) on filters legate cannot evaluate faithfully.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import type { AccessLogFilter__Output } from '../../generated/envoy/config/accesslog/v3/AccessLogFilter.ts';
import type { ComparisonFilter__Output } from '../../generated/envoy/config/accesslog/v3/ComparisonFilter.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import { KNOWN_RESPONSE_FLAGS } from '../http/formatter.ts';
import { compileHeaderMatcher } from '../http/matchers.ts';
import { HeaderMap } from '../http/headers.ts';

export interface AccessLogFilter {
  /** True when the stream should be logged. */
  evaluate(info: StreamInfo): boolean;
}

type Predicate = (info: StreamInfo) => boolean;

/** What header_filter sees on a stream without request headers (tcp_proxy), as Envoy's empty map. */
const NO_HEADERS = new HeaderMap();

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

const GRPC_STATUS_NUMBERS: Record<string, number> = {
  OK: 0, CANCELED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
function httpToGrpcStatus(code: number): number {
  switch (code) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** grpc-status from trailers, then headers (trailers-only), then mapped from the HTTP status. */
function streamGrpcStatus(info: StreamInfo): number {
  const v = info.responseTrailers?.get('grpc-status') ?? info.responseHeaders?.get('grpc-status');
  if (v !== undefined && /^[0-9]+$/.test(v)) return Number(v);
  return info.responseCode === undefined ? 2 : httpToGrpcStatus(info.responseCode);
}

function durationOf(info: StreamInfo): number {
  return Math.floor(info.durationMs ?? performance.now() - info.startMono);
}

function comparison(c: ComparisonFilter__Output | null, path: string, read: (info: StreamInfo) => number): Result<Predicate> {
  if (!c) return fail(joinPath(path, 'comparison'), 'comparison is required');
  if (!c.value) return fail(joinPath(path, 'comparison.value'), 'value is required');
  // Runtime overrides are not supported: the runtime default is the value.
  const value = c.value.default_value;
  switch (c.op) {
    case 'EQ':
      return ok((i) => read(i) === value);
    case 'GE':
      return ok((i) => read(i) >= value);
    case 'LE':
      return ok((i) => read(i) <= value);
    default:
      return fail(joinPath(path, 'comparison.op'), `unknown comparison op ${String(c.op)}`);
  }
}

function compileList(filters: readonly AccessLogFilter__Output[], path: string): Result<Predicate[]> {
  if (filters.length < 2) return fail(path, `value must contain at least 2 item(s), got ${filters.length}`);
  const out: Predicate[] = [];
  const errors: ConfigError[] = [];
  filters.forEach((f, k) => {
    const r = compile(f, `${path}[${k}]`);
    if (r.ok) out.push(r.value);
    else errors.push(...r.errors);
  });
  return errors.length ? { ok: false, errors } : ok(out);
}

function compile(f: AccessLogFilter__Output, path: string): Result<Predicate> {
  const which = f.filter_specifier;
  const p = which ? joinPath(path, which) : path;
  switch (which) {
    case 'status_code_filter':
      return comparison(f.status_code_filter?.comparison ?? null, p, (i) => i.responseCode ?? 0);
    case 'duration_filter':
      return comparison(f.duration_filter?.comparison ?? null, p, durationOf);
    case 'not_health_check_filter':
      // Requests the health check filter answered or marked (envoy.filters.http.health_check).
      return ok((i) => !i.healthCheck);
    case 'traceable_filter':
      // No tracing yet: no stream is traced, as in Envoy without a tracer.
      return ok(() => false);
    case 'runtime_filter': {
      const pct = f.runtime_filter?.percent_sampled;
      const denom = DENOMINATORS[pct?.denominator ?? 'HUNDRED'] ?? 100;
      const fraction = Math.min((pct?.numerator ?? 0) / denom, 1);
      return ok(() => Math.random() < fraction);
    }
    case 'and_filter': {
      const r = compileList(f.and_filter?.filters ?? [], joinPath(p, 'filters'));
      if (!r.ok) return r;
      const list = r.value;
      return ok((i) => list.every((g) => g(i)));
    }
    case 'or_filter': {
      const r = compileList(f.or_filter?.filters ?? [], joinPath(p, 'filters'));
      if (!r.ok) return r;
      const list = r.value;
      return ok((i) => list.some((g) => g(i)));
    }
    case 'header_filter': {
      const h = f.header_filter?.header;
      if (!h) return fail(joinPath(p, 'header'), 'header is required');
      const r = compileHeaderMatcher(h, joinPath(p, 'header'));
      if (!r.ok) return r;
      const m = r.value;
      return ok((i) => m(i.requestHeaders ?? NO_HEADERS));
    }
    case 'response_flag_filter': {
      const flags = f.response_flag_filter?.flags ?? [];
      const errors: ConfigError[] = [];
      flags.forEach((fl, k) => {
        if (!KNOWN_RESPONSE_FLAGS.has(fl)) errors.push({ path: joinPath(p, `flags[${k}]`), reason: `unknown response flag '${fl}'` });
      });
      if (errors.length) return { ok: false, errors };
      // No flags listed: any flag set passes.
      if (flags.length === 0) return ok((i) => i.responseFlags.size > 0);
      return ok((i) => {
        const set = i.responseFlags as ReadonlySet<string>;
        return flags.some((fl) => set.has(fl));
      });
    }
    case 'grpc_status_filter': {
      const g = f.grpc_status_filter;
      const wanted = new Set((g?.statuses ?? []).map((s) => GRPC_STATUS_NUMBERS[s] ?? -1));
      const exclude = g?.exclude ?? false;
      return ok((i) => wanted.has(streamGrpcStatus(i)) !== exclude);
    }
    case 'extension_filter':
    case 'metadata_filter':
    case 'log_type_filter':
      return fail(p, `access log filter ${which} is not supported by legate`);
    default:
      return fail(path, 'one of the access log filter types must be set');
  }
}

/** Compiles an AccessLog.filter. */
export function parseAccessLogFilter(f: AccessLogFilter__Output, path: string): Result<AccessLogFilter> {
  const r = compile(f, path);
  if (!r.ok) return r;
  const evaluate = r.value;
  return ok({ evaluate });
}
