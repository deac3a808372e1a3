// Test harness for the TLS transport sockets: configs from Envoy JSON, a plain net server whose
// accepted sockets go through a ServerTransportSocket (echoing what the client sends), and
// counter reads.

import * as net from 'node:net';
import type * as tls from 'node:tls';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors, type Result } from '../../../src/config/result.ts';
import type { TransportSocket__Output } from '../../../src/generated/envoy/config/core/v3/TransportSocket.ts';
import type { ParseContext, SdsReference } from '../../../src/filters/registry.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { MemorySecretStore } from '../../../src/proxy/tls/secret-store.ts';
import { parseDownstreamTransportSocket, parseUpstreamTransportSocket, type DownstreamTlsConfig, type UpstreamTlsConfig } from '../../../src/proxy/tls/transport-sockets.ts';
import type { ServerTransportSocket, TlsConnectionInfo, TlsSecret } from '../../../src/proxy/tls/types.ts';

export const DOWNSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export interface Hooks {
  readonly staticSecrets?: ReadonlyMap<string, TlsSecret>;
  readonly sdsRefs?: SdsReference[];
}

function parseContext(path: string, h: Hooks): ParseContext {
  return { path, clusterNames: undefined, tls: { staticSecrets: h.staticSecrets ?? new Map(), sds: (r) => void h.sdsRefs?.push(r) } };
}

function transportSocket(typeUrl: string, typedConfig: Record<string, unknown>, path: string): Result<TransportSocket__Output> {
  return decodeJson<TransportSocket__Output>('envoy.config.core.v3.TransportSocket', { name: 'envoy.transport_sockets.tls', typed_config: { '@type': typeUrl, ...typedConfig } }, { path });
}

/** Parses a DownstreamTlsContext given as Envoy JSON; the Result (errors carry field paths). */
export function parseDownstream(json: Record<string, unknown>, h: Hooks = {}, path = 'listeners[0].filter_chains[0].transport_socket'): Result<DownstreamTlsConfig | undefined> {
  const ts = transportSocket(DOWNSTREAM, json, path);
  if (!ts.ok) return ts;
  return parseDownstreamTransportSocket(ts.value, parseContext(path, h));
}

export function parseUpstream(json: Record<string, unknown>, h: Hooks = {}, path = 'clusters[0].transport_socket'): Result<UpstreamTlsConfig | undefined> {
  const ts = transportSocket(UPSTREAM, json, path);
  if (!ts.ok) return ts;
  return parseUpstreamTransportSocket(ts.value, parseContext(path, h));
}

export function must<T>(r: Result<T | undefined>): T {
  if (!r.ok) throw new Error(formatErrors(r.errors));
  if (r.value === undefined) throw new Error('expected a TLS config');
  return r.value;
}

export function inline(pem: string): { inline_string: string } {
  return { inline_string: pem };
}

export function counter(stats: StatsStore, name: string): number {
  return stats.snapshot().counters[name] ?? 0;
}

export interface TestWorld {
  readonly stats: StatsStore;
  readonly secrets: MemorySecretStore;
}

export function world(): TestWorld {
  return { stats: new StatsStore(), secrets: new MemorySecretStore() };
}

export const LISTENER_PREFIX = 'listener.127.0.0.1_0.';

export interface Served {
  readonly port: number;
  /** Each accepted connection's secure() outcome, in accept order. */
  readonly outcomes: Promise<{ ok: true; info: TlsConnectionInfo; socket: tls.TLSSocket } | { ok: false; error: Error }>[];
  close(): Promise<void>;
}

/**
 * A plain TCP server whose connections are secured by `sts` and then echo. `beforeSecure` may
 * read from the raw socket and unshift (as tls_inspector does) before the handshake starts.
 */
export async function serve(sts: ServerTransportSocket, opts: { timeoutMs?: number; beforeSecure?: (s: net.Socket) => Promise<void> } = {}): Promise<Served> {
  const outcomes: Served['outcomes'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    const p = (opts.beforeSecure ? opts.beforeSecure(raw) : Promise.resolve())
      .then(() => sts.secure(raw, LISTENER_PREFIX, opts.timeoutMs ?? 5000))
      .then(
        ({ socket, info }) => {
          socket.on('error', () => {});
          socket.on('data', (d: Buffer) => socket.write(d));
          socket.on('end', () => socket.end());
          return { ok: true as const, info, socket };
        },
        (error: Error) => ({ ok: false as const, error }),
      );
    outcomes.push(p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    outcomes,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Writes `msg` and waits for the echo (proves the TLS connection carries data). */
export function echo(socket: net.Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= msg.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(msg);
  });
}

/** The secure() outcome of the i-th accepted connection (waits for the accept). */
export type Outcome = Awaited<Served['outcomes'][number]>;

export async function outcome(srv: Served, i: number): Promise<Outcome> {
  for (let n = 0; srv.outcomes.length <= i; n++) {
    if (n > 2000) throw new Error(`connection ${i} was never accepted`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return srv.outcomes[i]!;
}

/** A plain node TLS client; resolves once the handshake finished (or failed, with the error). */
export function tlsClient(port: number, opts: tls.ConnectionOptions = {}): Promise<{ socket: tls.TLSSocket; error?: Error }> {
  return import('node:tls').then(
    (t) =>
      new Promise((resolve) => {
        const socket = t.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
        socket.once('secureConnect', () => resolve({ socket }));
        socket.once('error', (error) => resolve({ socket, error }));
        socket.once('close', () => resolve({ socket, error: new Error('closed') }));
      }),
  );
}
