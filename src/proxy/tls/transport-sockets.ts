// The `transport_socket` of a filter chain or a cluster: raw_buffer (plaintext) or
// `envoy.transport_sockets.tls` parsed into a TLS config, and the factories that turn a config
// into a worker's server or client transport socket. Any other transport socket is a config
// error naming its path. The TLS code (context parsing, node:tls and the transport sockets) is
// required the first time a config names TLS: a process whose config has no TLS never loads
// node:tls, whose set-up costs ~3.9 MB of RSS. The /certs view is certs-view.ts.

import { createRequire } from 'node:module';
import type { TransportSocket__Output } from '../../generated/envoy/config/core/v3/TransportSocket.ts';
import type { DownstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
import type { UpstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
import { decodeJson, extensionTypeUrl, unpackAny } from '../../config/decode.ts';
import { fail, joinPath, ok, type Result } from '../../config/result.ts';
import type { ParseContext } from '../../filters/registry.ts';
import type { ClientTransportOptions } from './client-transport.ts';
import type { DownstreamTlsConfig, UpstreamTlsConfig } from './context-config.ts';
import type { ClientTransportSocket, ServerTransportSocket, TransportSocketContext } from './types.ts';

export type { DownstreamTlsConfig, UpstreamTlsConfig } from './context-config.ts';

export const TLS_NAME = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_NAME = 'envoy.transport_sockets.raw_buffer';
export const DOWNSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const RAW_BUFFER_TYPE = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

const lazy = createRequire(import.meta.url);
const contextConfig = (): typeof import('./context-config.ts') => lazy('./context-config.ts') as typeof import('./context-config.ts');

function typeNameOf(ts: TransportSocket__Output): string | undefined {
  const any = ts.typed_config;
  if (!any?.type_url) return undefined;
  const url = extensionTypeUrl(any);
  return url.slice(url.lastIndexOf('/') + 1);
}

/** True for plaintext: no transport socket, or raw_buffer by type or (config-less) by name. */
export function isRawBuffer(ts: TransportSocket__Output | null | undefined): boolean {
  if (!ts) return true;
  const t = typeNameOf(ts);
  return t === RAW_BUFFER_TYPE || (t === undefined && (ts.name === RAW_BUFFER_NAME || ts.name === 'raw_buffer'));
}

function tlsMessage<T>(ts: TransportSocket__Output, want: string, other: string, ctx: ParseContext): Result<{ msg: T; path: string } | undefined> {
  if (isRawBuffer(ts)) return ok(undefined);
  const t = typeNameOf(ts);
  if (t === undefined) {
    if (ts.name !== TLS_NAME && ts.name !== 'tls') return fail(ctx.path, `unknown transport socket "${ts.name}": legate supports ${RAW_BUFFER_NAME} and ${TLS_NAME}`);
    const d = decodeJson<T>(want, {}, { path: ctx.path });
    return d.ok ? ok({ msg: d.value, path: ctx.path }) : d;
  }
  if (t === other) return fail(joinPath(ctx.path, 'typed_config'), `${t} cannot be used here: expected ${want}`);
  if (t !== want) return fail(ctx.path, `unknown transport socket "${ts.name}" (${t}): legate supports ${RAW_BUFFER_NAME} and ${TLS_NAME}`);
  const path = joinPath(ctx.path, 'typed_config');
  const u = unpackAny<T>(ts.typed_config!, path);
  return u.ok ? ok({ msg: u.value.message, path }) : u;
}

/** A filter chain's transport_socket: undefined = plaintext. `ctx.path` is the transport_socket's path. */
export function parseDownstreamTransportSocket(ts: TransportSocket__Output | null | undefined, ctx: ParseContext): Result<DownstreamTlsConfig | undefined> {
  if (!ts) return ok(undefined);
  const m = tlsMessage<DownstreamTlsContext__Output>(ts, DOWNSTREAM_TLS_TYPE, UPSTREAM_TLS_TYPE, ctx);
  if (!m.ok || !m.value) return m as Result<undefined>;
  return contextConfig().parseDownstreamTlsContext(m.value.msg, { ...ctx, path: m.value.path });
}

/** A cluster's (or transport_socket_matches entry's) transport_socket: undefined = plaintext. */
export function parseUpstreamTransportSocket(ts: TransportSocket__Output | null | undefined, ctx: ParseContext): Result<UpstreamTlsConfig | undefined> {
  if (!ts) return ok(undefined);
  const m = tlsMessage<UpstreamTlsContext__Output>(ts, UPSTREAM_TLS_TYPE, DOWNSTREAM_TLS_TYPE, ctx);
  if (!m.ok || !m.value) return m as Result<undefined>;
  return contextConfig().parseUpstreamTlsContext(m.value.msg, { ...ctx, path: m.value.path });
}

/** The server side for one filter chain on a worker (close() it when the chain goes away). */
export function createServerTransportSocket(cfg: DownstreamTlsConfig, ctx: TransportSocketContext): ServerTransportSocket & { close(): void } {
  const { TlsServerTransportSocket } = lazy('./server-transport.ts') as typeof import('./server-transport.ts');
  return new TlsServerTransportSocket(cfg, ctx);
}

/** The client side for one cluster on a worker; `opts` carries the cluster's auto_sni / auto_san_validation. */
export function createClientTransportSocket(cfg: UpstreamTlsConfig, ctx: TransportSocketContext, opts?: ClientTransportOptions): ClientTransportSocket & { close(): void } {
  const { TlsClientTransportSocket } = lazy('./client-transport.ts') as typeof import('./client-transport.ts');
  return new TlsClientTransportSocket(cfg, ctx, opts);
}
