// Recognises the start of a plaintext HTTP connection: the HTTP/2 prior-knowledge preface or an
// HTTP/1.x request line. Pure and incremental: 'more' until the bytes so far decide it.

export type HttpDetection = 'more' | 'not_http' | 'http/1.0' | 'http/1.1' | 'h2c';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

// llhttp's request methods: an unknown method is not HTTP, as for Envoy's parser.
const METHODS = [
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL', 'MOVE',
  'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY',
  'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PATCH', 'PURGE', 'MKCALENDAR',
  'LINK', 'UNLINK', 'SOURCE', 'QUERY',
];
const VERSION_PREFIX = 'HTTP/1.';

function isPrefixOf(part: string, whole: string): boolean {
  return part.length <= whole.length && whole.startsWith(part);
}

export function detectHttp(data: Buffer): HttpDetection {
  const n = Math.min(data.length, H2_PREFACE.length);
  if (data.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return n === H2_PREFACE.length ? 'h2c' : 'more';

  const crlf = data.indexOf('\r\n');
  const complete = crlf >= 0;
  const line = data.toString('latin1', 0, complete ? crlf : data.length);

  const sp1 = line.indexOf(' ');
  const method = sp1 < 0 ? line : line.slice(0, sp1);
  if (sp1 < 0) return !complete && METHODS.some((m) => isPrefixOf(method, m)) ? 'more' : 'not_http';
  if (!METHODS.includes(method)) return 'not_http';

  const rest = line.slice(sp1 + 1);
  const sp2 = rest.indexOf(' ');
  const target = sp2 < 0 ? rest : rest.slice(0, sp2);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(target)) return 'not_http';
  if (sp2 < 0) return complete || target.length === 0 && rest.length > 0 ? 'not_http' : 'more';
  if (target.length === 0) return 'not_http';

  const version = rest.slice(sp2 + 1);
  if (!complete) {
    if (version.length <= VERSION_PREFIX.length) return isPrefixOf(version, VERSION_PREFIX) ? 'more' : 'not_http';
    return version.length === VERSION_PREFIX.length + 1 && (version.endsWith('0') || version.endsWith('1')) ? 'more' : 'not_http';
  }
  if (version === 'HTTP/1.1') return 'http/1.1';
  if (version === 'HTTP/1.0') return 'http/1.0';
  return 'not_http';
}
