// Downstream HTTP/1.x request heads (parsed by codec-http1-server.ts) → HeaderMap with Envoy's
// pseudo-headers. Malformed requests come back as a rejection, never a throw.

import { HeaderMap, lowerName } from './headers.ts';
import type { HcmConfig } from './hcm-config.ts';
import { headerValue, type Http1RequestHead } from './codec-http1-server.ts';

export interface Rejection {
  readonly status: number;
  readonly details: string;
  readonly body: string;
}

/** The parts of an HTTP/1.x request head that h1RequestHeaders reads. */
export type H1Head = Pick<Http1RequestHead, 'method' | 'url' | 'httpVersionMajor' | 'httpVersionMinor' | 'rawHeaders'>;

/** HTTP/1.x request head → HeaderMap (`:method`, `:path`, `:authority` from Host, `:scheme`). */
export function h1RequestHeaders(req: H1Head, cfg: HcmConfig, tls: boolean): { headers: HeaderMap; reject?: Rejection } {
  const h = new HeaderMap();
  const method = req.method;
  const raw = req.rawHeaders;
  let host = headerValue(raw, 'host');
  let path = req.url;
  h.addParsed(':method', method);
  if (method === 'CONNECT') {
    host = path;
  } else {
    if (path.startsWith('http://') || path.startsWith('https://')) {
      if (cfg.http1.allowAbsoluteUrl) {
        try {
          const u = new URL(path);
          host = u.host;
          path = u.pathname + u.search;
        } catch {
          return { headers: h, reject: { status: 400, details: 'http1.codec_error', body: 'Bad Request' } };
        }
      }
    }
    h.addParsed(':path', path);
  }
  const v10 = req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  if (v10 && !cfg.http1.acceptHttp10) return { headers: h, reject: { status: 426, details: 'http1.http_1_0_not_supported', body: 'Upgrade Required' } };
  if (host === undefined && v10 && cfg.http1.defaultHostForHttp10) h.add(':authority', cfg.http1.defaultHostForHttp10);
  else if (host !== undefined) h.addParsed(':authority', host);
  h.addParsed(':scheme', tls ? 'https' : 'http');
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
