// The router's retry/hedging orchestration: the attempts in flight, the winner, the retry state and
// timers, the replay buffer and the hosts tried. Never throws; retries it cannot make only set flags.

import type { HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction } from '../../../proxy/http/route-types.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import type { Cluster, Host, RoutingPriority, UpstreamTransportOptions } from '../../../proxy/upstream/types.ts';
import type { RetryState, ResetKind, RetryStatus } from './retry-state.ts';
import type { UpstreamAttempt } from './upstream-attempt.ts';
import { startHttp1Request } from './upstream-request-http1.ts';
import { startHttp2Request } from './upstream-request-http2.ts';
import { type LongTimer, setLongTimeout } from '../../../proxy/long-timers.ts';

/** What the downstream has sent so far, for starting (or replaying into) an attempt. */
export interface DownstreamRequestState {
  readonly ended: boolean;
  readonly trailers: HeaderMap | undefined;
  /** The upgrade (WebSocket) being proxied, if any. */
  readonly upgrade: string | undefined;
}

export class AttemptSet {
  /** Attempts in flight; after the response started, only the one that won. */
  list: UpstreamAttempt[] = [];
  /** The attempt whose response goes downstream. */
  winner: UpstreamAttempt | undefined;
  /** Attempts started so far. */
  count = 0;
  retry: RetryState | undefined;
  hedgeOnPerTryTimeout = false;
  /** Hosts tried so far (previous_hosts predicate). */
  triedHosts: Set<string> | undefined;
  hostSelectionAttempts = 1;
  /** Request body kept for replay while a retry is possible; undefined once abandoned or not needed. */
  body: Buffer[] | undefined;
  bodyBytes = 0;
  /** Retry back-off timers pending; made at the first retry. */
  #timers: Set<LongTimer> | undefined;
  readonly #cb: HttpFilterCallbacks;
  readonly #finished: () => boolean;
  readonly #startAttempt: (timeoutRetry: boolean) => void;

  /** `startAttempt` runs when a retry timer fires, unless the stream finished or an attempt won. */
  constructor(cb: HttpFilterCallbacks, finished: () => boolean, startAttempt: (timeoutRetry: boolean) => void) {
    this.#cb = cb;
    this.#finished = finished;
    this.#startAttempt = startAttempt;
  }

  /** A host for the next attempt, avoiding tried hosts up to host_selection_retry_max_attempts times. */
  pickHost(cluster: Cluster, action: ClusterRouteAction, headers: HeaderMap): Host | undefined {
    const info = this.#cb.streamInfo;
    const tried = this.triedHosts;
    const exclude = tried !== undefined && tried.size > 0 ? tried : undefined;
    const ctx = { hashKey: action.hash(headers, info), excludeHosts: exclude, downstreamLocal: info.downstreamLocal, requestHeaders: headers };
    let host = cluster.chooseHost(ctx);
    for (let i = 1; host && exclude?.has(host.key) && i < this.hostSelectionAttempts; i++) {
      host = cluster.chooseHost({ ...ctx, hashKey: action.hash(headers, info) }) ?? host;
    }
    if (host) tried?.add(host.key);
    return host;
  }

  /**
   * Adds `a` and starts its upstream request over the cluster's protocol, replaying the body kept so far.
   * `transport`: the request's auto_sni / auto_san_validation options.
   */
  launch(a: UpstreamAttempt, cluster: Cluster, headers: HeaderMap, down: DownstreamRequestState, transport?: UpstreamTransportOptions, priority?: RoutingPriority): void {
    this.list.push(a);
    const n = a.number;
    // What the downstream sent so far: nothing more when it ended without body or trailers.
    const body = n === 1 ? undefined : this.body;
    const endNow = down.ended && (n === 1 || (this.bodyBytes === 0 && down.trailers === undefined));
    let protocol = cluster.info.protocol;
    if (protocol === 'downstream') protocol = this.#cb.streamInfo.protocol === 'HTTP/2' ? 'http2' : 'http1';
    // WebSocket needs an HTTP/1.1 upstream (Envoy would use extended CONNECT on HTTP/2; legate does not).
    const upgrade = down.upgrade;
    const req =
      upgrade !== undefined || protocol === 'http1'
        ? startHttp1Request(cluster.http1Pool(a.host, transport, priority), headers, endNow, a, upgrade === undefined ? {} : { upgrade })
        : startHttp2Request(() => cluster.http2Session(a.host, transport, priority), headers, endNow, a, this.#cb.streamInfo.schemeMatchUpstream);
    a.request = req;
    if (n > 1 && !endNow && body) {
      const last = body.length - 1;
      body.forEach((chunk, i) => req.sendData(chunk, i === last && down.ended && down.trailers === undefined));
      if (down.trailers) req.sendTrailers(down.trailers);
    }
  }

  /**
   * Retry decision on response headers before any attempt won: 'retry' (scheduled; the caller ends
   * and drops `a`), 'wait' (a bad answer while others may do better; the caller drops `a`) or 'forward'.
   */
  onResponseHeaders(a: UpstreamAttempt, headers: HeaderMap): 'retry' | 'wait' | 'forward' {
    const retry = this.retry;
    if (!retry || this.winner !== undefined) return 'forward';
    let couldNotRetry = false;
    if (a.hedged) couldNotRetry = retry.wouldRetryHeaders(headers);
    else {
      const s = retry.shouldRetryHeaders(headers);
      if (s.kind === 'yes') {
        this.scheduleRetry(s.delayMs);
        return 'retry';
      }
      couldNotRetry = this.noteRetryStatus(s);
    }
    if (couldNotRetry && this.othersPending(a)) return 'wait';
    // Forwarded: no more retries (Envoy resets its retry state here).
    this.retry = undefined;
    retry.destroy();
    return 'forward';
  }

  /** per_try_timeout with hedging: keep `a` running and race another attempt against it. */
  hedge(a: UpstreamAttempt): void {
    const retry = this.retry;
    if (!retry || a.hedged) return;
    const s = retry.shouldHedgeRetryPerTryTimeout();
    if (s.kind === 'yes') {
      a.hedged = true;
      this.scheduleRetry(s.delayMs, true);
    } else this.noteRetryStatus(s);
  }

  /** After an attempt ended without headers: true when a retry was scheduled or another attempt may still answer. */
  maybeRetryReset(a: UpstreamAttempt, kind: ResetKind): boolean {
    const retry = this.retry;
    if (retry && !a.hedged) {
      const s = retry.shouldRetryReset(kind);
      if (s.kind === 'yes') {
        this.scheduleRetry(s.delayMs, kind === 'timeout');
        return true;
      }
      this.noteRetryStatus(s);
    }
    return this.othersPending(a);
  }

  /** Flags for a retry that could not happen; true when the response would have been retried. */
  noteRetryStatus(s: RetryStatus): boolean {
    if (s.kind === 'limit') this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamRetryLimitExceeded);
    else if (s.kind === 'overflow') this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamOverflow);
    return s.kind === 'limit' || s.kind === 'overflow';
  }

  othersPending(a: UpstreamAttempt): boolean {
    return (this.#timers !== undefined && this.#timers.size > 0) || this.list.some((o) => o !== a && !o.headersReceived);
  }

  /** `timeoutRetry`: the retry follows a per-try timeout (x-envoy-is-timeout-retry). */
  scheduleRetry(delayMs: number, timeoutRetry = false): void {
    const t = setLongTimeout(() => {
      this.#timers?.delete(t);
      if (!this.#finished() && this.winner === undefined) this.#startAttempt(timeoutRetry);
    }, delayMs);
    (this.#timers ??= new Set()).add(t);
  }

  /** The request body outgrew the buffer: the current attempt is the last. */
  abandonRetries(): void {
    this.retry?.destroy();
    this.retry = undefined;
    this.hedgeOnPerTryTimeout = false;
    this.body = undefined;
    this.bodyBytes = 0;
    this.#clearRetryTimers();
  }

  /** This attempt's response goes downstream: the others are reset, pending retries cancelled. */
  win(a: UpstreamAttempt): void {
    this.winner = a;
    this.resetAttempts(a);
    this.list = [a];
    this.#clearRetryTimers();
    this.body = undefined;
  }

  /** Removes a finished attempt; un-pauses the downstream if it was holding the request body back. */
  drop(a: UpstreamAttempt): void {
    const i = this.list.indexOf(a);
    if (i >= 0) this.list.splice(i, 1);
    if (a.blocked && !this.#finished()) this.#cb.setDecoderReadable(true);
  }

  /** Resets every attempt in flight except `keep`. */
  resetAttempts(keep: UpstreamAttempt | undefined): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const a = list[i]!;
      if (a === keep || !a.active) continue;
      a.report({ kind: 'local', failure: 'reset' });
      a.abort();
    }
    if (keep === undefined) this.list = [];
  }

  /** No retry survives this: timers cancelled, retry state released. */
  clearRetries(): void {
    this.#clearRetryTimers();
    this.retry?.destroy();
    this.retry = undefined;
  }

  #clearRetryTimers(): void {
    const timers = this.#timers;
    if (timers === undefined || timers.size === 0) return;
    for (const t of timers) t.clear();
    timers.clear();
  }
}
