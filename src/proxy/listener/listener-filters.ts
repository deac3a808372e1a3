// Runs a listener's listener filters (tls_inspector, http_inspector...) on an accepted socket and
// collects what they learn for filter-chain matching. Peeked bytes are always unshifted back.
// Fails closed: a filter error, a peer close or a timeout (unless continue_on_listener_filters_timeout)
// destroys the socket, bumps a counter, and resolves undefined.

import type { Socket } from 'node:net';
import type { ConnectionMatchInput } from './filter-chain-match.ts';
import type { StatsStore } from '../stats.ts';
import type { ListenerFilterChainMatchPredicate__Output } from '../../generated/envoy/config/listener/v3/ListenerFilterChainMatchPredicate.ts';
import { type Result, fail, joinPath, ok } from '../../config/result.ts';
import { setLongTimeout } from '../long-timers.ts';

/** ConnectionMatchInput while listener filters are still writing to it. */
export interface MutableMatchInput {
  destinationPort: number;
  destinationIp: string;
  serverName: string | undefined;
  /** '' until a filter sets it; runListenerFilters turns '' into 'raw_buffer'. */
  transportProtocol: string;
  applicationProtocols: string[];
  sourceIp: string;
  sourcePort: number;
  directSourceIp?: string;
  /** original_dst set destinationIp/destinationPort from SO_ORIGINAL_DST (Envoy's localAddressRestored()). */
  localAddressRestored?: boolean;
}

/**
 * A listener filter. An extension's factory returns one shared instance per listener; onAccept is
 * called once per connection, so per-connection state lives inside the call. It resolves when
 * done and rejects (ListenerFilterRejection) to close the connection. On `signal` abort
 * (listener_filters_timeout) it must give back peeked bytes and settle promptly.
 */
export interface ListenerFilter {
  onAccept(socket: Socket, input: MutableMatchInput, signal: AbortSignal): Promise<void>;
}

/** Why a listener filter refused a connection. */
export class ListenerFilterRejection extends Error {
  readonly reason: 'remote_close' | 'error';
  constructor(reason: 'remote_close' | 'error', message: string) {
    super(message);
    this.name = 'ListenerFilterRejection';
    this.reason = reason;
  }
}

/** listener_filters_timeout's default. */
export const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15 * 1000; // 15 s

export interface ListenerFilterStatsScope {
  readonly store: StatsStore;
  /** Listener stat prefix, e.g. `listener.0.0.0.0_10000.` */
  readonly prefix: string;
}

function stripMapped(ip: string | undefined): string {
  return ip?.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : (ip ?? '');
}

/** The match input for a socket before any listener filter ran. */
export function initialMatchInput(socket: Socket): MutableMatchInput {
  return {
    destinationPort: socket.localPort ?? 0,
    destinationIp: stripMapped(socket.localAddress),
    serverName: undefined,
    transportProtocol: '',
    applicationProtocols: [],
    sourceIp: stripMapped(socket.remoteAddress),
    sourcePort: socket.remotePort ?? 0,
  };
}

function finish(input: MutableMatchInput): ConnectionMatchInput {
  if (input.transportProtocol === '') input.transportProtocol = 'raw_buffer';
  return input;
}

/**
 * Runs `filters` in order. `timeoutMs` 0 disables the timeout. Resolves the match input, or
 * undefined after destroying the socket (counted in `stats`: downstream_pre_cx_timeout,
 * downstream_listener_filter_remote_close, downstream_listener_filter_error). `initial` (optional)
 * replaces the addresses read from the socket. Afterwards the socket is neither flowing nor paused
 * by us: attach 'data' (or pipe) and the unshifted bytes come first.
 */
export function runListenerFilters(
  socket: Socket,
  filters: readonly ListenerFilter[],
  timeoutMs: number,
  continueOnTimeout: boolean,
  stats?: ListenerFilterStatsScope,
): Promise<ConnectionMatchInput | undefined>;
export function runListenerFilters(
  socket: Socket,
  filters: readonly ListenerFilter[],
  initial: ConnectionMatchInput,
  timeoutMs: number,
  continueOnTimeout: boolean,
  stats?: ListenerFilterStatsScope,
): Promise<ConnectionMatchInput | undefined>;
export function runListenerFilters(
  socket: Socket,
  filters: readonly ListenerFilter[],
  a: number | ConnectionMatchInput,
  b: number | boolean,
  c?: boolean | ListenerFilterStatsScope,
  d?: ListenerFilterStatsScope,
): Promise<ConnectionMatchInput | undefined> {
  if (typeof a === 'number') return run(socket, filters, initialMatchInput(socket), a, b as boolean, c as ListenerFilterStatsScope | undefined);
  const input: MutableMatchInput = { ...a, applicationProtocols: [...a.applicationProtocols] };
  return run(socket, filters, input, b as number, c as boolean, d);
}

async function run(
  socket: Socket,
  filters: readonly ListenerFilter[],
  input: MutableMatchInput,
  timeoutMs: number,
  continueOnTimeout: boolean,
  stats: ListenerFilterStatsScope | undefined,
): Promise<ConnectionMatchInput | undefined> {
  if (filters.length === 0) return finish(input);
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    timeoutMs > 0
      ? setLongTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs)
      : undefined;
  try {
    for (const f of filters) {
      if (controller.signal.aborted) break;
      await f.onAccept(socket, input, controller.signal);
    }
  } catch (e) {
    const reason = e instanceof ListenerFilterRejection ? e.reason : 'error';
    if (stats) {
      stats.store.counter(`${stats.prefix}${reason === 'remote_close' ? 'downstream_listener_filter_remote_close' : 'downstream_listener_filter_error'}`).inc();
    }
    socket.destroy();
    return undefined;
  } finally {
    timer?.clear();
  }
  if (timedOut) {
    if (stats) stats.store.counter(`${stats.prefix}downstream_pre_cx_timeout`).inc();
    if (!continueOnTimeout) {
      socket.destroy();
      return undefined;
    }
  }
  if (socket.destroyed) return undefined;
  return finish(input);
}

/** How one peek attempt ended. 'limit': maxBytes were read without a verdict. */
export type PeekOutcome = 'done' | 'aborted' | 'limit';

/**
 * Reads from `socket` until `inspect` says 'done' (or maxBytes, or abort), then unshifts every
 * byte read, synchronously with the last read so a pending EOF cannot be emitted first.
 * `inspect` sees all bytes so far each time; a number instead of 'done' consumes that many bytes
 * (a header the filter takes off the stream, as proxy_protocol does) and unshifts the rest.
 * Rejects with ListenerFilterRejection('remote_close') when the peer closes first.
 */
export function peekSocket(
  socket: Socket,
  maxBytes: number,
  signal: AbortSignal,
  inspect: (data: Buffer) => 'done' | 'more' | number,
): Promise<PeekOutcome> {
  return new Promise<PeekOutcome>((resolve, reject) => {
    let held: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: PeekOutcome | Error): void => {
      if (settled) return;
      settled = true;
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      signal.removeEventListener('abort', onAbort);
      if (outcome instanceof Error) {
        reject(outcome);
        return;
      }
      if (held.length > 0 && !socket.readableEnded) socket.unshift(held);
      resolve(outcome);
    };
    const onReadable = (): void => {
      const chunks: Buffer[] = [held];
      let total = held.length;
      let chunk: Buffer | null;
      while (total < maxBytes && (chunk = socket.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        total += chunk.length;
      }
      if (total === held.length) return;
      held = Buffer.concat(chunks, total);
      const verdict = inspect(held);
      if (typeof verdict === 'number') {
        held = held.subarray(verdict);
        settle('done');
      } else if (verdict === 'done') settle('done');
      else if (held.length >= maxBytes) settle('limit');
    };
    const onEnd = (): void => settle(new ListenerFilterRejection('remote_close', 'connection closed during listener filter inspection'));
    const onAbort = (): void => settle('aborted');
    if (signal.aborted) {
      resolve('aborted');
      return;
    }
    if (socket.destroyed || socket.readableEnded) {
      reject(new ListenerFilterRejection('remote_close', 'connection closed before listener filter inspection'));
      return;
    }
    signal.addEventListener('abort', onAbort);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
    socket.on('readable', onReadable);
  });
}

/** ListenerFilter.filter_disabled, compiled: true -> skip the filter for this connection. */
export type ListenerFilterDisabled = (input: ConnectionMatchInput | MutableMatchInput) => boolean;

export function compileFilterDisabled(p: ListenerFilterChainMatchPredicate__Output, path: string): Result<ListenerFilterDisabled> {
  switch (p.rule) {
    case 'any_match':
      return ok(() => true);
    case 'not_match': {
      if (!p.not_match) return fail(joinPath(path, 'not_match'), 'value is required');
      const inner = compileFilterDisabled(p.not_match, joinPath(path, 'not_match'));
      return inner.ok ? ok((c) => !inner.value(c)) : inner;
    }
    case 'or_match':
    case 'and_match': {
      const set = p[p.rule];
      const rules: ListenerFilterDisabled[] = [];
      const rulesPath = joinPath(joinPath(path, p.rule), 'rules');
      if (!set || set.rules.length < 2) return fail(rulesPath, 'value must contain at least 2 item(s)');
      for (const [i, r] of set.rules.entries()) {
        const c = compileFilterDisabled(r, joinPath(rulesPath, `[${i}]`));
        if (!c.ok) return c;
        rules.push(c.value);
      }
      return ok(p.rule === 'or_match' ? (c) => rules.some((r) => r(c)) : (c) => rules.every((r) => r(c)));
    }
    case 'destination_port_range': {
      const r = p.destination_port_range;
      if (!r) return fail(joinPath(path, 'destination_port_range'), 'value is required');
      return ok((c) => c.destinationPort >= r.start && c.destinationPort < r.end); // [start, end)
    }
    default:
      return fail(path, 'one of or_match, and_match, not_match, any_match, destination_port_range is required');
  }
}

/** Wraps a filter so it is skipped for connections `disabled` selects (Envoy's filter_disabled). */
export function withFilterDisabled(filter: ListenerFilter, disabled: ListenerFilterDisabled): ListenerFilter {
  return {
    onAccept: (socket, input, signal) => (disabled(input) ? Promise.resolve() : filter.onAccept(socket, input, signal)),
  };
}
