// tcp_proxy's byte relay in C (tcp_relay.c beside this file, built by `npm install` through
// scripts/build-native.sh): the JavaScript side. `startRelay` hands two plain, connected sockets'
// bytes to the addon and returns undefined when it cannot (addon not built, a TLS socket, no file
// descriptor, a FIN already read, LEGATE_TCP_RELAY=js): the caller then relays in JavaScript.

import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { isTlsSocket } from '../../proxy/tls/is-tls-socket.ts';

/** How the relay ended: both FINs passed and written, an error on one side, or abort(). */
export const RelayOutcome = { Closed: 0, Error: 1, Aborted: 2 } as const;
export type RelayOutcome = (typeof RelayOutcome)[keyof typeof RelayOutcome];

/** Slots of the counters array the addon writes (tcp_relay.c's S_* enum). */
export const RelaySlot = {
  ReadDown: 0,
  ReadUp: 1,
  ForwardedUp: 2,
  ForwardedDown: 3,
  Reads: 4,
  Paused: 5,
  Resumed: 6,
  QueuedUp: 7,
  QueuedDown: 8,
  FirstUpRxMs: 9,
  LastDownTxMs: 10,
  /** 1 while the upstream is given what was queued for it after the downstream failed. */
  Flushing: 11,
} as const;
const SLOTS = 12;

export interface RelayEnd {
  readonly outcome: RelayOutcome;
  /** Which side failed (outcome Error). */
  readonly side: 'downstream' | 'upstream';
  /** Node's form of the error: 'read ECONNRESET'. */
  readonly message: string;
  /** The upstream was given what was queued for it after the downstream failed (Envoy's upstream flush). */
  readonly flushed: boolean;
}

type DoneCallback = (outcome: RelayOutcome, side: number, syscall: string, code: string, flushed: boolean) => void;

interface Addon {
  relay(fdDown: number, fdUp: number, counters: Float64Array, onDone: DoneCallback, toUp?: Buffer, toDown?: Buffer): object | undefined;
  abort(handle: object): void;
}

export interface NativeRelay {
  /** Counters the addon keeps current (RelaySlot); times are in performance.now()'s clock via `toMono`. */
  readonly counters: Float64Array;
  /** Ends the relay now, without flushing; the end callback follows with outcome Aborted. */
  abort(): void;
}

const ADDON_PATH = './build/Release/tcp_relay.node';
let addon: Addon | null | undefined;
let enabled = process.env.LEGATE_TCP_RELAY !== 'js';
let started = 0;

function load(): Addon | null {
  if (addon !== undefined) return enabled ? addon : null;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch {
    addon = null;
  }
  return enabled ? addon : null;
}

/** Whether tcp_proxy relays in C on this machine (the addon is built and not switched off). */
export function nativeRelayAvailable(): boolean {
  return load() !== null;
}

/**
 * Switches the C relay off (or back on) for connections from now on; LEGATE_TCP_RELAY=js starts
 * with it off. For comparing the two paths (tests, bench).
 */
export function setNativeRelayEnabled(on: boolean): void {
  enabled = on;
}

/** Relays started by this thread so far. */
export function nativeRelaysStarted(): number {
  return started;
}

/** uv_hrtime in ms (the addon's timestamps) -> performance.now(). Both clocks are monotonic. */
const hrtimeToMono = performance.now() - Number(process.hrtime.bigint()) / 1e6;
export function toMono(hrtimeMs: number): number {
  return hrtimeMs + hrtimeToMono;
}

interface HandleFields {
  fd?: unknown;
  reading?: boolean;
  readStop?(): number;
}

function handleOf(socket: Socket): HandleFields | undefined {
  return (socket as unknown as { _handle?: HandleFields | null })._handle ?? undefined;
}

/** A plain TCP socket, open and connected, whose peer has not sent FIN yet. */
function relayable(socket: Socket): boolean {
  if (isTlsSocket(socket) || socket.destroyed || socket.connecting || socket.readableEnded || socket.writableEnded) return false;
  const state = (socket as unknown as { _readableState?: { ended?: boolean } })._readableState;
  if (state?.ended) return false;
  const h = handleOf(socket);
  return typeof h?.fd === 'number' && h.fd >= 0 && typeof h.readStop === 'function';
}

/** What Node has read and not handed out yet, taken out of the socket; the socket stops reading. */
function takeBuffered(socket: Socket): Buffer | undefined {
  const chunks: Buffer[] = [];
  for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null) chunks.push(c);
  // read() may have asked the handle to read again; nothing is read before the loop turns.
  const h = handleOf(socket)!;
  h.reading = false;
  h.readStop!();
  if (chunks.length === 0) return undefined;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * Relays the two sockets' bytes in C until both FINs have passed, one side fails, or abort().
 * The sockets stay open (JavaScript closes them after `onEnd`) and must not be read or written
 * meanwhile. Undefined when the relay cannot take them; they are then untouched.
 */
export function startRelay(down: Socket, up: Socket, onEnd: (end: RelayEnd) => void): NativeRelay | undefined {
  const a = load();
  if (!a || !relayable(down) || !relayable(up)) return undefined;
  const counters = new Float64Array(SLOTS);
  const toUp = takeBuffered(down);
  const toDown = takeBuffered(up);
  const fdDown = handleOf(down)!.fd as number;
  const fdUp = handleOf(up)!.fd as number;
  const handle = a.relay(fdDown, fdUp, counters, (outcome, side, syscall, code, flushed) => {
    onEnd({ outcome, side: side === 0 ? 'downstream' : 'upstream', message: code ? `${syscall} ${code}` : '', flushed });
  }, toUp, toDown);
  if (!handle) {
    // Could not duplicate the descriptors: give back what was taken and let JavaScript relay.
    if (toUp) down.unshift(toUp);
    if (toDown) up.unshift(toDown);
    return undefined;
  }
  started++;
  return { counters, abort: () => a.abort(handle) };
}
