// The HTTP local rate limit filter: per worker, a factory holding the (process-wide) token buckets of
// the filter config and of each route override; per stream, a filter that takes a token on request
// headers and answers 429 `local_rate_limited` (flag RL) when none is left and enforcement is on.
// Decisions never throw: a route override that fails to parse falls back to the filter config.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import { localTokenBucket, sharedTokenBucket, type TokenBucket, type TokenBucketSpec } from '../../../proxy/token-bucket.ts';
import { descriptorId, LOCAL_RATELIMIT_NAME, parseLocalRateLimit, type LocalRateLimitConfig, type RuntimeFraction } from './config.ts';
import { requestDescriptors, type Entry } from '../../common/rate-limit-descriptors.ts';
import type { LocalRateLimit__Output } from '../../../generated/envoy/extensions/filters/http/local_ratelimit/v3/LocalRateLimit.ts';
import { logger } from '../../../proxy/log.ts';

const log = logger('filter');

const GRPC_RESOURCE_EXHAUSTED = 8;
/** Per-connection buckets are swept (full ones dropped: a full bucket equals a fresh one) past this many. */
const PER_CONNECTION_SWEEP_AT = 1024;

export interface LocalRateLimitStats {
  readonly enabled: Counter;
  readonly enforced: Counter;
  readonly rateLimited: Counter;
  readonly ok: Counter;
}

/** A config's default bucket and descriptor buckets. */
export class RateLimiter {
  readonly #config: LocalRateLimitConfig;
  readonly #default: TokenBucket | undefined;
  /** In the config's order (most restrictive first). */
  readonly #descriptors: ReadonlyArray<{ readonly id: string; readonly bucket: TokenBucket }>;

  constructor(config: LocalRateLimitConfig, make: (suffix: string, spec: TokenBucketSpec) => TokenBucket) {
    this.#config = config;
    this.#default = config.tokenBucket ? make('default', config.tokenBucket) : undefined;
    this.#descriptors = config.descriptors.map((d) => ({ id: d.id, bucket: make(`descriptor.${d.id}`, d.bucket) }));
  }

  /**
   * Envoy's requestAllowed: matched descriptor buckets first (a refusal stops there), then the
   * default bucket unless a descriptor matched and always_consume_default_token_bucket is false.
   */
  check(request: readonly (readonly Entry[])[]): { readonly allowed: boolean; readonly bucket: TokenBucket | undefined } {
    let first: TokenBucket | undefined;
    if (this.#descriptors.length > 0 && request.length > 0) {
      const ids = new Set(request.map(descriptorId));
      for (const d of this.#descriptors) {
        if (!ids.has(d.id)) continue;
        first ??= d.bucket;
        if (!d.bucket.consume()) return { allowed: false, bucket: d.bucket };
      }
    }
    if (first && !this.#config.alwaysConsumeDefaultBucket) return { allowed: true, bucket: first };
    if (!this.#default) return { allowed: true, bucket: first };
    return { allowed: this.#default.consume(), bucket: this.#default };
  }

  /** Every bucket is full: dropping this limiter changes nothing. */
  idle(): boolean {
    if (this.#default && this.#default.remaining() < this.#default.spec.maxTokens) return false;
    return this.#descriptors.every((d) => d.bucket.remaining() >= d.bucket.spec.maxTokens);
  }
}

interface Active {
  readonly config: LocalRateLimitConfig;
  readonly limiter: RateLimiter;
  readonly serial: number;
}

export class LocalRateLimitFactory implements HttpFilterFactory<LocalRateLimitConfig> {
  readonly #rt: RuntimeContext;
  readonly #top: Active;
  readonly #overrides = new WeakMap<object, Active | null>();
  readonly #stats = new Map<string, LocalRateLimitStats>();
  readonly #perConnection = new Map<string, RateLimiter>();
  #sweepAt = PER_CONNECTION_SWEEP_AT;
  #serial = 0;

  constructor(config: LocalRateLimitConfig, rt: RuntimeContext) {
    this.#rt = rt;
    this.#top = this.#activate(config);
  }

  create(_config: LocalRateLimitConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new LocalRateLimitFilter(this, callbacks);
  }

  #activate(config: LocalRateLimitConfig): Active {
    this.stats(config.statPrefix);
    const shared = this.#rt.shared;
    return { config, serial: this.#serial++, limiter: new RateLimiter(config, (suffix, spec) => sharedTokenBucket(shared, `${config.bucketKey}.${suffix}`, spec)) };
  }

  /** The config for this request: the route's override, the filter's, or undefined when the route disables the filter. */
  resolve(route: RouteEntry | undefined): Active | undefined {
    const o = route?.perFilterConfig.get(LOCAL_RATELIMIT_NAME);
    if (o === undefined || route === undefined) return this.#top;
    if (o === FILTER_DISABLED) return undefined;
    if (typeof o !== 'object' || o === null) return this.#top;
    let a = this.#overrides.get(o);
    if (a === undefined) {
      // Route tables are compiled on every worker: name the buckets after the route and the config so
      // every worker finds the same process-wide cells.
      const where = `${route.virtualHost.name}/${route.name}`;
      const r = parseLocalRateLimit(o as LocalRateLimit__Output, `typed_per_filter_config["${LOCAL_RATELIMIT_NAME}"]`, `http_local_rate_limit.route.${where}.${JSON.stringify(o)}`, true);
      if (!r.ok) log.warn(`route ${where}: ignoring invalid local rate limit override: ${r.errors.map((e) => `${e.path}: ${e.reason}`).join('; ')}`);
      a = r.ok ? this.#activate(r.value) : null;
      this.#overrides.set(o, a);
    }
    return a ?? this.#top;
  }

  /** The limiter of this config for one downstream connection (local_rate_limit_per_downstream_connection). */
  connectionLimiter(a: Active, connectionId: number): RateLimiter {
    const key = `${connectionId}/${a.serial}`;
    let l = this.#perConnection.get(key);
    if (!l) {
      if (this.#perConnection.size >= this.#sweepAt) {
        for (const [k, v] of this.#perConnection) if (v.idle()) this.#perConnection.delete(k);
        this.#sweepAt = Math.max(PER_CONNECTION_SWEEP_AT, this.#perConnection.size * 2);
      }
      l = new RateLimiter(a.config, (_suffix, spec) => localTokenBucket(spec));
      this.#perConnection.set(key, l);
    }
    return l;
  }

  stats(prefix: string): LocalRateLimitStats {
    let s = this.#stats.get(prefix);
    if (!s) {
      const p = `${prefix}.http_local_rate_limit.`;
      const c = (n: string): Counter => this.#rt.stats.counter(p + n);
      s = { enabled: c('enabled'), enforced: c('enforced'), rateLimited: c('rate_limited'), ok: c('ok') };
      this.#stats.set(prefix, s);
    }
    return s;
  }

  /** A runtime fraction; absent -> 0%. */
  on(f: RuntimeFraction | undefined): boolean {
    return f !== undefined && this.#rt.runtime.featureEnabled(f.runtimeKey, f.dflt);
  }
}

export class LocalRateLimitFilter implements HttpFilter {
  readonly #f: LocalRateLimitFactory;
  readonly #cb: HttpFilterCallbacks;
  #config: LocalRateLimitConfig | undefined;
  #bucket: TokenBucket | undefined;
  #limited = false;

  constructor(factory: LocalRateLimitFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const route = this.#cb.route();
    const active = this.#f.resolve(route);
    if (!active) return FilterHeadersStatus.Continue;
    const config = active.config;
    if (!this.#f.on(config.filterEnabled)) return FilterHeadersStatus.Continue;
    const stats = this.#f.stats(config.statPrefix);
    stats.enabled.inc();
    const info = this.#cb.streamInfo;
    const descriptors = config.descriptors.length > 0 ? requestDescriptors(route, config.stage, config.vhRateLimits, headers, info) : [];
    const limiter = config.perConnection ? this.#f.connectionLimiter(active, info.connectionId) : active.limiter;
    const r = limiter.check(descriptors);
    this.#config = config;
    this.#bucket = r.bucket;
    if (r.allowed) {
      stats.ok.inc();
      return FilterHeadersStatus.Continue;
    }
    stats.rateLimited.inc();
    if (!this.#f.on(config.filterEnforced)) {
      config.requestHeadersWhenNotEnforced.apply(headers, info);
      return FilterHeadersStatus.Continue;
    }
    stats.enforced.inc();
    this.#limited = true;
    this.#cb.sendLocalReply(config.status, 'local_rate_limited', {
      flag: ResponseFlag.RateLimited,
      details: 'local_rate_limited',
      ...(config.grpcResourceExhausted ? { grpcStatus: GRPC_RESOURCE_EXHAUSTED } : {}),
    });
    return FilterHeadersStatus.StopIteration;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    const config = this.#config;
    if (!config) return FilterHeadersStatus.Continue;
    if (this.#limited) {
      headers.set('x-envoy-ratelimited', 'true');
      config.responseHeaders.apply(headers, this.#cb.streamInfo);
    }
    const b = this.#bucket;
    if (config.xRateLimitHeaders && b) {
      // RateLimit header fields, draft 03: limit, remaining, seconds until the next fill.
      headers.set('x-ratelimit-limit', String(b.spec.maxTokens));
      headers.set('x-ratelimit-remaining', String(b.remaining()));
      headers.set('x-ratelimit-reset', String(Math.ceil(b.msUntilFill() / 1000)));
    }
    return FilterHeadersStatus.Continue;
  }
}
