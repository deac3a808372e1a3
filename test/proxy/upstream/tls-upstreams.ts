// Test helpers for upstream TLS: HTTPS / HTTP/2-over-TLS / TLS echo upstreams on 127.0.0.1 that
// record what each connection negotiated (SNI, ALPN, the client certificate's URI SANs, resumption),
// and builders for Envoy cluster YAML with an UpstreamTlsContext.

import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import net from 'node:net';
import { once } from 'node:events';
import { stringify } from 'yaml';
import type { Issued } from '../../helpers/certs.ts';

export interface Seen {
  readonly path: string;
  readonly authority: string;
  /** SNI the client sent (false when none). */
  readonly sni: string | false;
  readonly alpn: string | false | null;
  /** URI SANs of the client certificate; empty when none was presented. */
  readonly peerUris: readonly string[];
  readonly reused: boolean;
  readonly httpVersion: string;
}

export interface TlsUpstream {
  readonly port: number;
  readonly seen: Seen[];
  /** TLS connections accepted (handshakes completed). */
  readonly connections: () => number;
  close(): Promise<void>;
}

function uris(s: tls.TLSSocket): string[] {
  const c = s.getPeerCertificate();
  const alt = c && typeof c.subjectaltname === 'string' ? c.subjectaltname : '';
  return alt
    .split(', ')
    .filter((x) => x.startsWith('URI:'))
    .map((x) => x.slice(4));
}

function seenOf(s: tls.TLSSocket, path: string, authority: string, httpVersion: string): Seen {
  return { path, authority, sni: (s as tls.TLSSocket & { servername?: string | false }).servername ?? false, alpn: s.alpnProtocol, peerUris: uris(s), reused: s.isSessionReused(), httpVersion };
}

export interface UpstreamOpts {
  readonly cert: Issued;
  /** CA bundle PEM to verify client certificates with; set → a client certificate is required. */
  readonly clientCa?: string;
  /** HTTP/2 only (ALPN h2), else HTTP/1.1. */
  readonly h2?: boolean;
  /** Answer with `connection: close` so every request needs a new connection (HTTP/1.1). */
  readonly closeEach?: boolean;
  /** Certificates by SNI (server name → cert), for auto_sni tests. */
  readonly byServerName?: Readonly<Record<string, Issued>>;
}

function secureOpts(o: UpstreamOpts): tls.TlsOptions {
  const contexts = new Map(Object.entries(o.byServerName ?? {}).map(([n, c]) => [n, tls.createSecureContext({ key: c.keyPem, cert: c.certPem })]));
  return {
    key: o.cert.keyPem,
    cert: o.cert.certPem,
    ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    ...(contexts.size > 0 ? { SNICallback: (name: string, cb: (e: Error | null, c?: tls.SecureContext) => void) => cb(null, contexts.get(name)) } : {}),
  };
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** An HTTPS (HTTP/1.1) or HTTP/2-over-TLS upstream answering 200 with `up:<path>`. */
export async function tlsHttpUpstream(o: UpstreamOpts): Promise<TlsUpstream> {
  const seen: Seen[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  let server: https.Server | http2.Http2SecureServer;
  if (o.h2) {
    const s = http2.createSecureServer({ ...secureOpts(o), allowHTTP1: false });
    s.on('stream', (stream, headers) => {
      const sock = stream.session?.socket as tls.TLSSocket;
      seen.push(seenOf(sock, String(headers[':path']), String(headers[':authority']), '2.0'));
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`up:${String(headers[':path'])}`);
    });
    server = s;
  } else {
    const s = https.createServer(secureOpts(o), (req, res) => {
      seen.push(seenOf(req.socket as tls.TLSSocket, req.url ?? '', req.headers.host ?? '', req.httpVersion));
      req.resume();
      req.on('end', () => {
        if (o.closeEach) res.setHeader('connection', 'close');
        res.end(`up:${req.url}`);
      });
    });
    server = s;
  }
  server.on('secureConnection', (s: tls.TLSSocket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  return {
    port,
    seen,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TLS server echoing every byte back (tcp_proxy). */
export async function tlsEchoUpstream(o: UpstreamOpts): Promise<TlsUpstream> {
  const seen: Seen[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(secureOpts(o), (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    seen.push(seenOf(s, '', '', 'tcp'));
    s.pipe(s);
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  return {
    port,
    seen,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Accepts TCP connections and never answers (a TLS handshake to it can only time out). */
export async function silentUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface TlsContextOpts {
  /** Trusted CA bundle (PEM). */
  readonly ca: string;
  /** Client certificate (mTLS); none when undefined. */
  readonly client?: Issued;
  readonly sni?: string;
  readonly alpn?: readonly string[];
  /** match_typed_subject_alt_names, exact matchers. */
  readonly sans?: ReadonlyArray<{ readonly type: 'DNS' | 'URI'; readonly value: string }>;
}

/** A `transport_socket` with an UpstreamTlsContext (inline PEMs). */
export function upstreamTls(o: TlsContextOpts): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      ...(o.sni ? { sni: o.sni } : {}),
      common_tls_context: {
        ...(o.client ? { tls_certificates: [{ certificate_chain: { inline_string: o.client.certPem }, private_key: { inline_string: o.client.keyPem } }] } : {}),
        ...(o.alpn ? { alpn_protocols: [...o.alpn] } : {}),
        validation_context: {
          trusted_ca: { inline_string: o.ca },
          ...(o.sans ? { match_typed_subject_alt_names: o.sans.map((s) => ({ san_type: s.type, matcher: { exact: s.value } })) } : {}),
        },
      },
    },
  };
}

export interface EndpointSpec {
  readonly port: number;
  /** filter_metadata['envoy.transport_socket_match']. */
  readonly match?: Readonly<Record<string, unknown>>;
}

export interface ClusterOpts {
  readonly http2?: boolean;
  readonly connectTimeout?: string;
  readonly transportSocket?: Record<string, unknown>;
  readonly matches?: ReadonlyArray<{ readonly name: string; readonly match: Readonly<Record<string, unknown>>; readonly transport_socket: Record<string, unknown> }>;
  /** upstream_http_protocol_options in HttpProtocolOptions. */
  readonly autoSni?: boolean;
  readonly autoSan?: boolean;
  readonly overrideSniHeader?: string;
}

/** Envoy cluster YAML for static endpoints on 127.0.0.1 with the given TLS settings. */
export function tlsClusterYaml(name: string, endpoints: readonly EndpointSpec[], o: ClusterOpts = {}): string {
  const upo = o.autoSni || o.autoSan || o.overrideSniHeader ? { auto_sni: o.autoSni ?? false, auto_san_validation: o.autoSan ?? false, ...(o.overrideSniHeader ? { override_auto_sni_header: o.overrideSniHeader } : {}) } : undefined;
  const cluster = {
    name,
    connect_timeout: o.connectTimeout ?? '2s',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: endpoints.map((e) => ({
            endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: e.port } } },
            ...(e.match ? { metadata: { filter_metadata: { 'envoy.transport_socket_match': e.match } } } : {}),
          })),
        },
      ],
    },
    ...(o.http2 || upo
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: o.http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
              ...(upo ? { upstream_http_protocol_options: upo } : {}),
            },
          },
        }
      : {}),
    ...(o.transportSocket ? { transport_socket: o.transportSocket } : {}),
    ...(o.matches ? { transport_socket_matches: o.matches } : {}),
  };
  return stringify(cluster);
}
