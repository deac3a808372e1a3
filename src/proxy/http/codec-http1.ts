// Downstream HTTP/1.x request heads (parsed by codec-http1-server.ts) -> HeaderMap with Envoy's
// pseudo-headers. Malformed requests come back as a rejection, never a throw.

import { HeaderMap, lowerName } from './headers.ts';
import type { HcmConfig } from './hcm-config.ts';
import { headerValue, type Http1RequestHead } from './codec-http1-server.ts';

export interface Rejection {
  readonly status: number;
  readonly details: string;
  readonly body: string;
}

/** `scheme://authority` then the path and query; a fragment is left for the path checks to refuse. */
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/i;

/** The parts of an HTTP/1.x request head that h1RequestHeaders reads. */
export type H1Head = Pick<Http1RequestHead, 'method' | 'url' | 'httpVersionMajor' | 'httpVersionMinor' | 'rawHeaders'>;

/** HTTP/1.x request head -> HeaderMap (`:method`, `:path`, `:authority` from Host, `:scheme`). */
export function h1RequestHeaders(req: H1Head, cfg: HcmConfig, tls: boolean): { headers: HeaderMap; reject?: Rejection } {
  const h = new HeaderMap();
  const method = req.method;
  const raw = req.rawHeaders;
  let host = headerValue(raw, 'host');
  let path = req.url;
  let scheme = tls ? 'https' : 'http';
  h.addParsed(':method', method);
  if (method === 'CONNECT') {
    host = path;
  } else {
    const c0 = path.charCodeAt(0);
    if (c0 !== 47 /* / */ && c0 !== 42 /* * */ && cfg.http1.allowAbsoluteUrl) {
      // Absolute form (RFC 9112 3.2.2): its authority replaces Host and its scheme is :scheme, as
      // Envoy's codec does; the path is taken as sent (no WHATWG URL normalisation), '/' when empty.
      const m = ABSOLUTE_FORM.exec(path);
      if (!m) return { headers: h, reject: { status: 400, details: 'http1.invalid_url', body: 'Bad Request' } };
      scheme = m[1]!.toLowerCase();
      const authority = m[2]!;
      host = authority.slice(authority.lastIndexOf('@') + 1);
      if (host === '') return { headers: h, reject: { status: 400, details: 'http1.invalid_url', body: 'Bad Request' } };
      path = m[3]!.startsWith('/') ? m[3]! : `/${m[3]!}`;
    }
    h.addParsed(':path', path);
  }
  const v10 = req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  if (v10 && !cfg.http1.acceptHttp10) return { headers: h, reject: { status: 426, details: 'http1.http_1_0_not_supported', body: 'Upgrade Required' } };
  if (host === undefined && v10 && cfg.http1.defaultHostForHttp10) h.add(':authority', cfg.http1.defaultHostForHttp10);
  else if (host !== undefined) h.addParsed(':authority', host);
  h.addParsed(':scheme', scheme);
  let count = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    count++;
    if (name.length === 4 && lowerName(name) === 'host') continue;
    h.addParsed(name, raw[i + 1]!);
  }
  if (count > cfg.maxHeadersCount) return { headers: h, reject: { status: 431, details: 'http1.too_many_headers', body: 'Request Header Fields Too Large' } };
  if (host === undefined && !v10 && method !== 'CONNECT') return { headers: h, reject: { status: 400, details: 'missing_host_header', body: '' } };
  return { headers: h };
}
