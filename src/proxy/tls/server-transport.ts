// Downstream TLS for one filter chain on one worker: wraps an accepted socket (listener filters
// done, peeked bytes unshifted) in a server TLSSocket with the current SecureContext, runs the
// handshake and Envoy's peer checks, and counts `ssl.*` under the listener's prefix. A failure
// destroys the socket, bumps one stat and rejects with TlsHandshakeError.

import { appendFile } from 'node:fs';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../../filters/listener/tls_inspector/client-hello.ts';
import { peekSocket } from '../listener/listener-filters.ts';
import { chainTrusted, type Verdict } from './cert-validator.ts';
import { connectionInfo, peerChain } from './connection-info.ts';
import type { DownstreamTlsConfig } from './context-config.ts';
import { opensslVerifyError, releaseControl } from './node-internals.ts';
import { certificatesOf } from './pem.ts';
import { TlsContextProvider, type BuiltContext } from './secure-context.ts';
import { countFailure, countHandshake, declareSslStats } from './tls-stats.ts';
import { TlsHandshakeError, type ServerTransportSocket, type TlsConnectionInfo, type TlsFailureStat, type TransportSocketContext } from './types.ts';
import { setLongTimeout } from '../long-timers.ts';

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10 * 1000; // 10 s, when the listener sets none

type Secured = { socket: tls.TLSSocket; info: TlsConnectionInfo };

/** The client's ALPN offer, read from the ClientHello without consuming it (undefined: not TLS / closed). */
async function offeredAlpn(socket: Socket, signal: AbortSignal): Promise<readonly string[] | undefined> {
  let alpn: readonly string[] | undefined;
  try {
    await peekSocket(socket, MAX_CLIENT_HELLO_BYTES, signal, (data) => {
      const r = parseClientHello(data);
      if (r.kind === 'more') return 'more';
      if (r.kind === 'tls') alpn = r.alpn;
      return 'done';
    });
  } catch {
    return undefined;
  }
  return alpn;
}

export class TlsServerTransportSocket implements ServerTransportSocket {
  readonly #cfg: DownstreamTlsConfig;
  readonly #ctx: TransportSocketContext;
  readonly #provider: TlsContextProvider;
  readonly #declared = new Set<string>();

  constructor(cfg: DownstreamTlsConfig, ctx: TransportSocketContext) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#provider = new TlsContextProvider(cfg, ctx.secrets);
  }

  ready(): boolean {
    return this.#provider.ready();
  }

  /** Stops watching secrets (the filter chain is gone). */
  close(): void {
    this.#provider.close();
  }

  secure(socket: Socket, statPrefix: string, timeoutMs: number): Promise<Secured> {
    const stats = this.#ctx.stats;
    if (!this.#declared.has(statPrefix)) {
      this.#declared.add(statPrefix);
      declareSslStats(stats, statPrefix);
    }
    const built = this.ready() ? this.#provider.current() : undefined;
    if (!built) {
      countFailure(stats, statPrefix, 'connection_error');
      socket.destroy();
      return Promise.reject(new TlsHandshakeError('connection_error', 'TLS context is not ready: waiting for its SDS secrets'));
    }
    return new Promise<Secured>((resolve, reject) => {
      let settled = false;
      let tlsSocket: tls.TLSSocket | undefined;
      const abort = new AbortController();
      const fail = (stat: TlsFailureStat, reason: string): void => {
        if (settled) return;
        settled = true;
        timer.clear();
        abort.abort();
        countFailure(stats, statPrefix, stat);
        if (tlsSocket) tlsSocket.destroy();
        socket.destroy();
        reject(new TlsHandshakeError(stat, reason));
      };
      const timer = setLongTimeout(() => fail('connection_error', 'TLS handshake timeout'), timeoutMs > 0 ? timeoutMs : DEFAULT_HANDSHAKE_TIMEOUT_MS);
      const start = (alpnOffer: readonly string[] | undefined): void => {
        if (settled) return;
        if (socket.destroyed) return fail('connection_error', 'connection closed before the TLS handshake');
        tlsSocket = this.#wrap(socket, built, alpnOffer);
        const t = tlsSocket;
        const onError = (e: Error): void => fail('connection_error', e.message);
        const onClose = (): void => fail('connection_error', 'connection closed during the TLS handshake');
        t.on('error', onError);
        t.once('close', onClose);
        t.once('secure', () => {
          if (settled) return;
          const r = this.#check(t, built);
          if (!r.ok) return fail(r.stat, r.reason);
          settled = true;
          timer.clear();
          t.off('error', onError);
          t.off('close', onClose);
          releaseControl(t);
          countHandshake(stats, statPrefix, t, r.presented);
          resolve({ socket: t, info: connectionInfo(t, { peerCertificatePresented: r.presented, peerCertificateValidated: r.validated, chain: r.chain }) });
        });
      };
      // Envoy answers a ClientHello without a common protocol with no ALPN; node's server would
      // send a fatal alert, so look at the offer first and enable ALPN only when one matches.
      if (this.#cfg.alpn.length === 0) start(undefined);
      else void offeredAlpn(socket, abort.signal).then(start);
    });
  }

  #wrap(socket: Socket, built: BuiltContext, offer: readonly string[] | undefined): tls.TLSSocket {
    const cfg = this.#cfg;
    const choice = offer ? cfg.alpn.find((p) => offer.includes(p)) : undefined;
    const t = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: built.secureContext,
      requestCert: built.validator !== undefined || cfg.requireClientCertificate,
      rejectUnauthorized: false,
      ...(choice ? { ALPNProtocols: [choice] } : {}),
      ...(built.sniCallback ? { SNICallback: built.sniCallback } : {}),
    });
    if (cfg.keyLogPath) {
      const path = cfg.keyLogPath;
      t.on('keylog', (line: Buffer) => appendFile(path, line, { mode: 0o600 }, () => {}));
    }
    return t;
  }

  #check(t: tls.TLSSocket, built: BuiltContext): ({ ok: true; presented: boolean; validated: boolean; chain: ReturnType<typeof peerChain> }) | Extract<Verdict, { ok: false }> {
    if (this.#cfg.requireSni && !(t as tls.TLSSocket & { servername?: string | false | null }).servername) {
      return { ok: false, stat: 'connection_error', reason: 'client did not send SNI and require_sni is set' };
    }
    const chain = peerChain(t);
    const presented = chain.length > 0;
    if (!presented) {
      if (this.#cfg.requireClientCertificate) return { ok: false, stat: 'fail_verify_no_cert', reason: 'client presented no certificate' };
      return { ok: true, presented: false, validated: false, chain: [] };
    }
    if (!built.validator) return { ok: true, presented: true, validated: false, chain };
    let err = opensslVerifyError(t);
    if (err === undefined) {
      const anchors = certificatesOf(built.validator.caBundle());
      err = chainTrusted(chain, anchors, false) ? null : 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
    }
    const v = built.validator.verify(chain, err, undefined);
    if (!v.ok) return v;
    return { ok: true, presented: true, validated: v.validated, chain };
  }
}
