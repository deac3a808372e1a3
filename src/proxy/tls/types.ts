// The shapes TLS code shares: secrets (what SDS, bootstrap `secrets` and inline/file data sources
// resolve to), the peer identity a handshake yields (read by RBAC, the formatter, XFCC), and the
// transport sockets a listener chain and a cluster get from the `envoy.transport_sockets.tls`
// extension. Implementations live beside this file.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** A certificate chain and its private key, PEM (Envoy's `TlsCertificate`, resolved). */
export interface CertificateSecret {
  readonly kind: 'tls_certificate';
  readonly certificateChain: string;
  readonly privateKey: string;
  readonly password?: string;
  /** Where it came from, for /certs and error messages: a file path, `<inline>` or `sds:<name>`. */
  readonly source: string;
}

/** String matcher as Envoy's `StringMatcher`, already compiled. */
export interface StringMatch {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex';
  readonly value: string;
  readonly ignoreCase: boolean;
}

/** One `match_typed_subject_alt_names` entry. */
export interface SanMatcher {
  readonly type: 'DNS' | 'URI' | 'IP_ADDRESS' | 'EMAIL' | 'OTHER_NAME';
  readonly match: StringMatch;
}

/** Envoy's `CertificateValidationContext`, resolved (PEM read, matchers compiled). */
export interface ValidationSecret {
  readonly kind: 'validation_context';
  /** PEM bundle of trusted CAs; undefined = no chain verification (Envoy: any cert accepted unless other checks). */
  readonly trustedCa: string | undefined;
  readonly crl: string | undefined;
  readonly sanMatchers: readonly SanMatcher[];
  /** Base64 SHA-256 of the SubjectPublicKeyInfo (verify_certificate_spki). */
  readonly spkiPins: readonly string[];
  /** Hex SHA-256 of the DER certificate, lower case without colons (verify_certificate_hash). */
  readonly certHashPins: readonly string[];
  readonly allowExpiredCertificate: boolean;
  readonly trustChainVerification: 'VERIFY_TRUST_CHAIN' | 'ACCEPT_UNTRUSTED';
  /** SPIFFE validator (envoy.tls.cert_validator.spiffe): trust domain -> CA bundle PEM. */
  readonly spiffeTrustDomains: ReadonlyMap<string, string> | undefined;
  readonly source: string;
}

export type TlsSecret = CertificateSecret | ValidationSecret;

/**
 * Secrets by name on one worker (SDS names, `static_resources.secrets` names). The main thread
 * validates every update and sends it to each worker, which calls `set`; TLS contexts `watch`
 * the names they use and rebuild their SecureContext, so new handshakes use the new value and
 * established connections carry on.
 */
export interface SecretStore {
  get(name: string): TlsSecret | undefined;
  set(name: string, secret: TlsSecret): void;
  /** Calls onChange after every `set` of `name`; returns the unsubscribe function. */
  watch(name: string, onChange: (secret: TlsSecret) => void): () => void;
}

/** What a handshake tells about both ends (`%DOWNSTREAM_PEER_URI_SAN%`, RBAC principals, XFCC). */
export interface TlsConnectionInfo {
  /** `TLSv1.2`, `TLSv1.3`. */
  readonly version: string;
  /** OpenSSL cipher name, e.g. `TLS_AES_128_GCM_SHA256`. */
  readonly cipher: string;
  readonly alpn: string | undefined;
  readonly sni: string | undefined;
  readonly sessionReused: boolean;
  readonly peerCertificatePresented: boolean;
  readonly peerCertificateValidated: boolean;
  readonly peerUriSans: readonly string[];
  readonly peerDnsSans: readonly string[];
  readonly peerIpSans: readonly string[];
  readonly peerEmailSans: readonly string[];
  /** RFC 2253 form, as Envoy prints it: `CN=frontend,O=example`. */
  readonly peerSubject: string;
  readonly peerIssuer: string;
  /** Hex, lower case. */
  readonly peerSerial: string;
  /** Hex SHA-256 of the DER certificate, lower case, no colons. */
  readonly peerFingerprintSha256: string;
  /** The peer's leaf certificate, PEM (XFCC `Cert`). */
  readonly peerCertificatePem: string;
  /** The peer's chain (leaf first), PEM (XFCC `Chain`). */
  readonly peerChainPem: string;
  readonly peerValidFrom: Date | undefined;
  readonly peerValidTo: Date | undefined;
  readonly localUriSans: readonly string[];
  readonly localDnsSans: readonly string[];
  readonly localSubject: string;
}

/** Why a handshake or peer check failed: the `ssl.<stat>` counter it bumps. */
export type TlsFailureStat =
  | 'connection_error'
  | 'fail_verify_no_cert'
  | 'fail_verify_error'
  | 'fail_verify_san'
  | 'fail_verify_cert_hash';

export class TlsHandshakeError extends Error {
  readonly stat: TlsFailureStat;
  constructor(stat: TlsFailureStat, message: string) {
    super(message);
    this.name = 'TlsHandshakeError';
    this.stat = stat;
  }
}

/**
 * Downstream TLS for one filter chain on one worker (factory of the `envoy.transport_sockets.tls`
 * extension with a DownstreamTlsContext). Stats go under `listener.<prefix>.ssl.`.
 */
export interface ServerTransportSocket {
  /** False while a secret it needs has not arrived (SDS): the listener resets such connections. */
  ready(): boolean;
  /**
   * Wraps an accepted socket (listener filters done, peeked bytes unshifted) in a server TLSSocket
   * using the current SecureContext, runs the handshake and the peer checks. Resolves with the
   * secured socket and what it learnt; rejects with TlsHandshakeError after destroying the socket
   * and bumping the stat. `statPrefix` is the listener's `listener.<prefix>.`.
   */
  secure(socket: Socket, statPrefix: string, timeoutMs: number): Promise<{ socket: TLSSocket; info: TlsConnectionInfo }>;
}

/** Per-connection inputs to an upstream handshake. */
export interface ClientConnectTarget {
  readonly host: string;
  readonly port: number;
  /** Unix socket path for `pipe` endpoints. */
  readonly path?: string;
  /** SNI from auto_sni (the request's Host), overriding the context's `sni`. */
  readonly sni?: string;
  /** auto_san_validation: a SAN the peer must present (the request's Host). */
  readonly verifySan?: string;
  /**
   * ALPN to offer when the context has no `alpn_protocols` (Envoy's fallback: the connection pool's
   * protocol, ['h2'] for HTTP/2 pools, ['http/1.1'] for HTTP/1.1 ones; none for TCP).
   */
  readonly alpnFallback?: readonly string[];
  /**
   * ALPN that replaces the context's `alpn_protocols` when not empty (Envoy's ALPN override: a health
   * check's `tls_options.alpn_protocols`).
   */
  readonly alpnOverride?: readonly string[];
  /** upstream_bind_config: the address (and port, 0 = any) to connect from. */
  readonly source?: { readonly address: string; readonly port: number };
  readonly timeoutMs: number;
}

/**
 * Upstream TLS for one cluster (or one transport_socket_matches entry) on one worker (factory of
 * `envoy.transport_sockets.tls` with an UpstreamTlsContext). Stats go under `cluster.<name>.ssl.`.
 */
export interface ClientTransportSocket {
  ready(): boolean;
  /** ALPN offered upstream (`alpn_protocols`), e.g. ['h2']. */
  readonly alpn: readonly string[];
  readonly autoSni: boolean;
  readonly autoSanValidation: boolean;
  /**
   * Connects, handshakes (reusing a cached TLS session for the host when it has one) and checks the
   * server's certificate. Rejects with TlsHandshakeError (stat bumped) or a connect error.
   */
  connect(target: ClientConnectTarget, statPrefix: string): Promise<{ socket: TLSSocket; info: TlsConnectionInfo }>;
}

/** What a transport socket needs on a worker: a stats store (ssl.* counters) and the secrets. */
export interface TransportSocketContext {
  readonly stats: import('../stats.ts').StatsStore;
  readonly secrets: SecretStore;
}
