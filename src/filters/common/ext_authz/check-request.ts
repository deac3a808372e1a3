// envoy.service.auth.v3 messages for the ext_authz filters: the CheckRequest's AttributeContext built
// from a stream or a connection (Envoy's CheckRequestUtils: both peers' addresses and principals,
// for HTTP the request's method, path, host, scheme, protocol, size and headers, the body when
// buffered, context extensions; the SNI), encoded with Envoy's own protos; and the CheckResponse
// decoded into what the filter applies.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import type { TlsConnectionInfo } from '../../../proxy/tls/types.ts';
import { lookupMessageType } from '../../../config/protos.ts';
import { structToJson } from '../../../config/struct-json.ts';

/** What both filters' configs say about the peers' details in a CheckRequest. */
export interface PeerDetails {
  readonly includePeerCertificate: boolean;
  readonly includeTlsSession: boolean;
}

const CHECK_REQUEST = 'envoy.service.auth.v3.CheckRequest';
const CHECK_RESPONSE = 'envoy.service.auth.v3.CheckResponse';

/**
 * A header edit from a HeaderValueOption, as Envoy's ext_authz reads it: the deprecated `append`
 * when set (true: append to the existing value, false: overwrite), else `append_action` (default
 * APPEND_IF_EXISTS_OR_ADD: one more value).
 */
export interface HeaderEdit {
  readonly key: string;
  readonly value: string;
  readonly action: 'append' | 'add' | 'add-if-absent' | 'overwrite' | 'overwrite-if-exists';
}

const APPEND_ACTIONS: readonly HeaderEdit['action'][] = ['add', 'add-if-absent', 'overwrite', 'overwrite-if-exists'];

export type CheckVerdict = (
  | { readonly kind: 'ok'; readonly headers: readonly HeaderEdit[]; readonly remove: readonly string[]; readonly responseHeaders: readonly HeaderEdit[] }
  | { readonly kind: 'denied'; readonly status: number; readonly headers: readonly HeaderEdit[]; readonly body: string }
) & {
  /** The response's dynamic_metadata (a Struct, as plain JSON), for the stream's dynamic metadata; undefined when empty. */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
};

/** Envoy's Peer.principal: the certificate's first URI SAN, else DNS SAN, else its subject. */
function principal(uris: readonly string[], dns: readonly string[], subject: string): string {
  return uris[0] ?? dns[0] ?? subject;
}

function peer(address: { address: string; port: number }, tls: TlsConnectionInfo | undefined, side: 'peer' | 'local', withCert: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { address: { socket_address: { address: address.address, port_value: address.port } } };
  if (tls) {
    out['principal'] = side === 'peer' ? (tls.peerCertificatePresented ? principal(tls.peerUriSans, tls.peerDnsSans, tls.peerSubject) : '') : principal(tls.localUriSans, tls.localDnsSans, tls.localSubject);
    if (side === 'peer' && withCert && tls.peerCertificatePresented) out['certificate'] = encodeURIComponent(tls.peerCertificatePem);
  }
  return out;
}

export interface CheckInput {
  readonly headers: HeaderMap;
  readonly info: StreamInfo;
  readonly body: Buffer | undefined;
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly packAsBytes: boolean;
}

/** The serialized CheckRequest for this stream. */
export function encodeCheckRequest(c: PeerDetails, input: CheckInput): Buffer {
  const { headers, info } = input;
  const map: Record<string, string> = {};
  headers.forEach((k, v) => (map[k] = map[k] === undefined ? v : `${map[k]},${v}`));
  const now = Date.now();
  const length = headers.get('content-length');
  const http: Record<string, unknown> = {
    id: info.requestId ?? String(info.connectionId),
    method: headers.get(':method') ?? '',
    headers: map,
    path: headers.get(':path') ?? '',
    host: headers.get(':authority') ?? '',
    scheme: headers.get(':scheme') ?? (info.downstreamTls ? 'https' : 'http'),
    size: length !== undefined && /^[0-9]+$/.test(length) ? Number(length) : input.body ? input.body.length : -1,
    protocol: info.protocol ?? '',
  };
  if (input.body) {
    if (input.packAsBytes) http['raw_body'] = input.body;
    else http['body'] = input.body.toString('utf8');
  }
  const message = {
    attributes: {
      source: peer(info.downstreamRemote, info.downstreamTls, 'peer', c.includePeerCertificate),
      destination: peer(info.downstreamLocal, info.downstreamTls, 'local', false),
      request: { time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 }, http },
      context_extensions: input.contextExtensions,
      ...(c.includeTlsSession && info.downstreamTls ? { tls_session: { sni: info.downstreamTls.sni ?? '' } } : {}),
    },
  };
  return encode(message);
}

/** The CheckRequest for a connection (Envoy's createTcpCheck): its peers and, when asked, its SNI. */
export function encodeTcpCheckRequest(c: PeerDetails, info: StreamInfo): Buffer {
  const now = Date.now();
  return encode({
    attributes: {
      source: peer(info.downstreamRemote, info.downstreamTls, 'peer', c.includePeerCertificate),
      destination: peer(info.downstreamLocal, info.downstreamTls, 'local', false),
      request: { time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 } },
      ...(c.includeTlsSession && info.downstreamTls ? { tls_session: { sni: info.downstreamTls.sni ?? '' } } : {}),
    },
  });
}

function encode(message: object): Buffer {
  const type = lookupMessageType(CHECK_REQUEST);
  if (!type) throw new Error(`${CHECK_REQUEST} is missing from Envoy's protos`);
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

interface HeaderValueOption {
  header?: { key?: string; value?: string; raw_value?: Uint8Array } | null;
  append?: { value?: boolean } | null;
  append_action?: number;
}

function edits(list: readonly HeaderValueOption[] | undefined): HeaderEdit[] {
  const out: HeaderEdit[] = [];
  for (const o of list ?? []) {
    const key = o.header?.key?.toLowerCase();
    if (!key) continue;
    const value = o.header?.value || (o.header?.raw_value ? Buffer.from(o.header.raw_value).toString('latin1') : '');
    const action = o.append ? (o.append.value === true ? 'append' : 'overwrite') : (APPEND_ACTIONS[o.append_action ?? 0] ?? 'overwrite');
    out.push({ key, value, action });
  }
  return out;
}

/**
 * The service's answer: OK (google.rpc code 0) with the ok_response's header edits, or denied with
 * the denied_response's status (403 when unset), headers and body. Throws on a message that does
 * not decode (the caller treats it as an error of the call).
 */
export function decodeCheckResponse(buf: Buffer): CheckVerdict {
  const type = lookupMessageType(CHECK_RESPONSE);
  if (!type) throw new Error(`${CHECK_RESPONSE} is missing from Envoy's protos`);
  const r = type.toObject(type.decode(buf), { enums: Number, longs: Number, defaults: false, oneofs: true }) as {
    status?: { code?: number };
    dynamic_metadata?: unknown;
    denied_response?: { status?: { code?: number }; headers?: HeaderValueOption[]; body?: string };
    ok_response?: { headers?: HeaderValueOption[]; headers_to_remove?: string[]; response_headers_to_add?: HeaderValueOption[] };
  };
  const md = r.dynamic_metadata ? structToJson(r.dynamic_metadata) : {};
  const metadata = Object.keys(md).length > 0 ? md : undefined;
  if ((r.status?.code ?? 0) === 0) {
    const ok = r.ok_response;
    return { kind: 'ok', headers: edits(ok?.headers), remove: (ok?.headers_to_remove ?? []).map((h) => h.toLowerCase()), responseHeaders: edits(ok?.response_headers_to_add), metadata };
  }
  const d = r.denied_response;
  const code = d?.status?.code ?? 0;
  return { kind: 'denied', status: code >= 100 && code < 600 ? code : 403, headers: edits(d?.headers), body: d?.body ?? '', metadata };
}
