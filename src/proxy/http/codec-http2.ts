// Downstream HTTP/2 (h2c or TLS with ALPN h2) on node:http2's compat API: request pseudo-headers
// pass through; header count/size limits answer 431; a missing :authority answers 400.

import type { Http2ServerRequest } from 'node:http2';
import { HeaderMap } from './headers.ts';
import type { HcmConfig } from './hcm-config.ts';
import type { Rejection } from './codec-http1.ts';

/** HTTP/2 request headers → HeaderMap (pseudo-headers first, as received). */
export function h2RequestHeaders(req: Http2ServerRequest, cfg: HcmConfig): { headers: HeaderMap; reject?: Rejection } {
  const h = new HeaderMap();
  const raw = req.rawHeaders;
  let count = 0;
  let host: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) !== 58 /* ':' */) {
      count++;
      if (name === 'host') {
        host ??= value;
        continue;
      }
    }
    h.add(name, value);
  }
  if (!h.has(':authority') && host !== undefined) h.set(':authority', host);
  if (count > cfg.maxHeadersCount || h.byteSize() > cfg.maxRequestHeadersKb * 1024) {
    return { headers: h, reject: { status: 431, details: 'http2.too_many_headers', body: 'Request Header Fields Too Large' } };
  }
  if (!h.has(':authority') && h.get(':method') !== 'CONNECT') return { headers: h, reject: { status: 400, details: 'missing_host_header', body: '' } };
  return { headers: h };
}
