// Upstream TLS for one cluster on one worker: connects, handshakes with the current
// SecureContext (SNI, ALPN, client certificate), resumes cached sessions per host and SNI
// (max_session_keys), checks the server's certificate as Envoy does and counts `ssl.*` under the
// cluster's prefix. A handshake or verification failure bumps one stat and rejects with
// TlsHandshakeError; a TCP connect failure rejects with the socket's own error.

import type { X509Certificate } from 'node:crypto';
import { appendFile } from 'node:fs';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import type { UpstreamTlsConfig } from './context-config.ts';
import { verifySanList, type CertValidator, type Verdict } from './cert-validator.ts';
import { connectionInfo, parseSubjectAltNames, peerChain } from './connection-info.ts';
import { TlsContextProvider } from './secure-context.ts';
import { countFailure, countHandshake, declareSslStats } from './tls-stats.ts';
import { TlsHandshakeError, type ClientConnectTarget, type ClientTransportSocket, type TlsConnectionInfo, type TlsFailureStat, type TransportSocketContext } from './types.ts';
import { setLongTimeout } from '../long-timers.ts';

const DEFAULT_CONNECT_TIMEOUT_MS = 5 * 1000; // 5 s, Envoy's cluster connect_timeout default

export interface ClientTransportOptions {
  /** UpstreamHttpProtocolOptions.auto_sni: SNI from the request's Host (ClientConnectTarget.sni). */
  readonly autoSni?: boolean;
  /** UpstreamHttpProtocolOptions.auto_san_validation: the server must present ClientConnectTarget.verifySan. */
  readonly autoSanValidation?: boolean;
}

type Connected = { socket: tls.TLSSocket; info: TlsConnectionInfo };

/**
 * Sessions for one server, with what its full handshake verified: a resumed connection shows no
 * peer certificate on the client, so its info (and the checks' outcome) come from here.
 */
interface CachedSessions {
  readonly sessions: Buffer[];
  readonly chain: readonly X509Certificate[];
  readonly validated: boolean;
}

export class TlsClientTransportSocket implements ClientTransportSocket {
  readonly alpn: readonly string[];
  readonly autoSni: boolean;
  readonly autoSanValidation: boolean;
  readonly #cfg: UpstreamTlsConfig;
  readonly #ctx: TransportSocketContext;
  readonly #provider: TlsContextProvider;
  /** Resumable sessions by `host:port|sni|verifySan`, newest last, at most maxSessionKeys each. */
  readonly #sessions = new Map<string, CachedSessions>();
  #generation = 0;
  readonly #declared = new Set<string>();

  constructor(cfg: UpstreamTlsConfig, ctx: TransportSocketContext, opts: ClientTransportOptions = {}) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#provider = new TlsContextProvider(cfg, ctx.secrets);
    this.alpn = cfg.alpn;
    this.autoSni = opts.autoSni ?? false;
    this.autoSanValidation = opts.autoSanValidation ?? false;
  }

  ready(): boolean {
    return this.#provider.ready();
  }

  close(): void {
    this.#provider.close();
  }

  connect(target: ClientConnectTarget, statPrefix: string): Promise<Connected> {
    const stats = this.#ctx.stats;
    if (!this.#declared.has(statPrefix)) {
      this.#declared.add(statPrefix);
      declareSslStats(stats, statPrefix);
    }
    const built = this.ready() ? this.#provider.current() : undefined;
    if (!built) {
      countFailure(stats, statPrefix, 'connection_error');
      return Promise.reject(new TlsHandshakeError('connection_error', 'TLS context is not ready: waiting for its SDS secrets'));
    }
    if (built.generation !== this.#generation) {
      // New certificates or trust: sessions made under the old ones must not be resumed.
      this.#sessions.clear();
      this.#generation = built.generation;
    }
    const cfg = this.#cfg;
    // The pool sets target.sni / verifySan only when auto_sni / auto_san_validation are on.
    const wanted = target.sni ?? cfg.sni;
    const servername = wanted && isIP(wanted) === 0 ? wanted : undefined; // never an IP as SNI (RFC 6066)
    const key = `${target.path ?? `${target.host}:${target.port}`}|${servername ?? ''}|${target.verifySan ?? ''}`;
    const max = cfg.maxSessionKeys;
    const cached = max > 0 ? this.#sessions.get(key) : undefined;
    const session = cached?.sessions.at(-1);
    // What this connection's handshake verified, for the sessions it yields.
    let verified: { chain: readonly X509Certificate[]; validated: boolean } | undefined;
    return new Promise<Connected>((resolve, reject) => {
      let settled = false;
      let connected = false;
      const opts: tls.ConnectionOptions = {
        ...(target.path ? { path: target.path } : { host: target.host, port: target.port }),
        ...(target.source ? { localAddress: target.source.address, ...(target.source.port > 0 ? { localPort: target.source.port } : {}) } : {}),
        ...(servername ? { servername } : {}),
        // An override (health checks' tls_options), else alpn_protocols, else the pool's protocol
        // (Envoy's ALPN fallback; ClientConnectTarget.alpnFallback).
        ...(target.alpnOverride?.length ? { ALPNProtocols: [...target.alpnOverride] } : this.alpn.length > 0 ? { ALPNProtocols: [...this.alpn] } : target.alpnFallback?.length ? { ALPNProtocols: [...target.alpnFallback] } : {}),
        secureContext: built.secureContext,
        ...(session ? { session } : {}),
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined, // Envoy checks SANs only as configured (below)
      };
      const socket = tls.connect(opts);
      socket.setNoDelay(true);
      const fail = (stat: TlsFailureStat | undefined, err: Error): void => {
        if (settled) return;
        settled = true;
        timer.clear();
        socket.destroy();
        if (stat) countFailure(stats, statPrefix, stat);
        reject(stat ? new TlsHandshakeError(stat, err.message) : err);
      };
      const timer = setLongTimeout(() => {
        const e = Object.assign(new Error(connected ? 'TLS handshake timeout' : 'connect timeout'), { code: 'ETIMEDOUT' });
        fail(connected ? 'connection_error' : undefined, e);
      }, target.timeoutMs > 0 ? target.timeoutMs : DEFAULT_CONNECT_TIMEOUT_MS);
      if (max > 0) {
        // TLS 1.2 hands the session over before 'secureConnect' (held until the checks pass),
        // TLS 1.3 tickets come after it.
        const pending: Buffer[] = [];
        let fresh = true;
        const keep = (s: Buffer): void => {
          if (!verified) return void pending.push(s);
          // A full handshake's sessions replace older ones (the server may present another certificate now).
          const old = this.#sessions.get(key);
          const entry = old && (!fresh || socket.isSessionReused()) ? old : { sessions: [], ...verified };
          fresh = false;
          entry.sessions.push(s);
          while (entry.sessions.length > max) entry.sessions.shift();
          this.#sessions.set(key, entry);
        };
        socket.on('session', keep);
        socket.once('secureConnect', () => queueMicrotask(() => pending.splice(0).forEach(keep)));
      }
      if (cfg.keyLogPath) {
        const path = cfg.keyLogPath;
        socket.on('keylog', (line: Buffer) => appendFile(path, line, { mode: 0o600 }, () => {}));
      }
      socket.once('connect', () => void (connected = true));
      const onError = (e: Error): void => fail(connected ? 'connection_error' : undefined, e);
      socket.on('error', onError);
      socket.once('secureConnect', () => {
        if (settled) return;
        let chain = peerChain(socket);
        let validated = false;
        if (socket.isSessionReused() && cached && chain.length === 0) {
          // Checked on the full handshake that made the session (a failed one is never cached).
          chain = [...cached.chain];
          validated = cached.validated;
        } else {
          const verdict = this.#verify(built.validator, chain, socket, target.verifySan);
          if (!verdict.ok) {
            this.#sessions.delete(key);
            return fail(verdict.stat, new Error(verdict.reason));
          }
          validated = verdict.validated;
        }
        verified = { chain, validated };
        settled = true;
        timer.clear();
        socket.off('error', onError);
        countHandshake(stats, statPrefix, socket, chain.length > 0);
        resolve({ socket, info: connectionInfo(socket, { peerCertificatePresented: chain.length > 0, peerCertificateValidated: validated, chain }) });
      });
    });
  }

  #verify(validator: CertValidator | undefined, chain: readonly X509Certificate[], socket: tls.TLSSocket, verifySan: string | undefined): Verdict {
    if (validator) {
      const err = socket.authorized ? null : socket.authorizationError ? String(socket.authorizationError) : null;
      return validator.verify(chain, err, verifySan);
    }
    if (verifySan === undefined) return { ok: true, validated: false };
    const leaf = chain[0];
    if (!leaf) return { ok: false, stat: 'fail_verify_no_cert', reason: 'server presented no certificate' };
    if (verifySanList(verifySan, parseSubjectAltNames(leaf.subjectAltName))) return { ok: true, validated: false };
    return { ok: false, stat: 'fail_verify_san', reason: `verify cert failed: SAN does not match ${verifySan}` };
  }
}
