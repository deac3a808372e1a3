// An HTTP stream held in memory for the plugin sandbox (`legate wasm test`): header maps, bodies
// the plugin may read and rewrite, trailers, flow control as flags, local replies recorded, and a
// few request/plugin properties. No sockets: a plugin's behaviour can be checked without a proxy.

import { BufferType, MapType, Status, StreamType } from '../abi.ts';
import type { BufferAccess, ContextApi, HeaderMapAccess, LocalResponse } from '../host-api.ts';
import type { Pairs } from '../pairs.ts';

export class MemoryHeaders implements HeaderMapAccess {
  list: Array<[string, string]>;
  writable = true;
  constructor(init: Pairs = []) {
    this.list = init.map(([k, v]) => [k.toLowerCase(), v]);
  }
  pairs(): Pairs {
    return this.list;
  }
  get(k: string): string | undefined {
    return this.list.find(([n]) => n === k)?.[1];
  }
  add(k: string, v: string): void {
    this.list.push([k, v]);
  }
  replace(k: string, v: string): void {
    const i = this.list.findIndex(([n]) => n === k);
    if (i < 0) return this.add(k, v);
    this.list[i] = [k, v];
    this.list = this.list.filter(([n], j) => n !== k || j === i);
  }
  remove(k: string): void {
    this.list = this.list.filter(([n]) => n !== k);
  }
  setPairs(p: Pairs): void {
    this.list = p.map(([k, v]) => [k.toLowerCase(), v]);
  }
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (const [k, v] of this.list) o[k] = o[k] === undefined ? v : `${o[k]},${v}`;
    return o;
  }
}

export class MemoryBody implements BufferAccess {
  data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
  }
  bytes(): Buffer {
    return this.data;
  }
  set(start: number, size: number, value: Buffer): boolean {
    const s = Math.min(start, this.data.length);
    this.data = Buffer.concat([this.data.subarray(0, s), value, this.data.subarray(Math.min(this.data.length, s + size))]);
    return true;
  }
}

export class MemoryStream {
  readonly requestHeaders: MemoryHeaders;
  readonly requestTrailers: MemoryHeaders;
  readonly responseHeaders: MemoryHeaders;
  readonly responseTrailers: MemoryHeaders;
  readonly requestBody: MemoryBody;
  readonly responseBody: MemoryBody;
  /** Network filters: the bytes the plugin is looking at each way, and what it let through. */
  readonly downstreamData = new MemoryBody(Buffer.alloc(0));
  readonly upstreamData = new MemoryBody(Buffer.alloc(0));
  readonly forwarded = { downstream: '', upstream: '' };
  localReply: LocalResponse | undefined;
  requestContinued = false;
  responseContinued = false;
  closed = false;
  readonly properties: Map<string, Buffer>;

  constructor(o: { requestHeaders: Pairs; requestBody?: Buffer; requestTrailers?: Pairs; responseHeaders?: Pairs; responseBody?: Buffer; responseTrailers?: Pairs; properties?: Map<string, Buffer> }) {
    this.requestHeaders = new MemoryHeaders(o.requestHeaders);
    this.requestBody = new MemoryBody(o.requestBody ?? Buffer.alloc(0));
    this.requestTrailers = new MemoryHeaders(o.requestTrailers ?? []);
    this.responseHeaders = new MemoryHeaders(o.responseHeaders ?? [[':status', '200']]);
    this.responseBody = new MemoryBody(o.responseBody ?? Buffer.alloc(0));
    this.responseTrailers = new MemoryHeaders(o.responseTrailers ?? []);
    this.properties = o.properties ?? new Map();
  }

  api(root: ContextApi): ContextApi {
    return {
      ...root,
      headerMap: (m) =>
        m === MapType.HTTP_REQUEST_HEADERS ? this.requestHeaders : m === MapType.HTTP_REQUEST_TRAILERS ? this.requestTrailers : m === MapType.HTTP_RESPONSE_HEADERS ? this.responseHeaders : m === MapType.HTTP_RESPONSE_TRAILERS ? this.responseTrailers : root.headerMap(m),
      buffer: (t) =>
        t === BufferType.HTTP_REQUEST_BODY ? this.requestBody : t === BufferType.HTTP_RESPONSE_BODY ? this.responseBody : t === BufferType.DOWNSTREAM_DATA ? this.downstreamData : t === BufferType.UPSTREAM_DATA ? this.upstreamData : root.buffer(t),
      continueStream: (t) => {
        if (t === StreamType.HTTP_REQUEST) this.requestContinued = true;
        else if (t === StreamType.HTTP_RESPONSE) this.responseContinued = true;
        else if (t !== StreamType.DOWNSTREAM && t !== StreamType.UPSTREAM) return Status.BAD_ARGUMENT;
        return Status.OK;
      },
      closeStream: () => ((this.closed = true), Status.OK),
      sendLocalResponse: (r) => ((this.localReply = r), Status.OK),
      property: (path) => {
        const p = path.join('.');
        const set = this.properties.get(p);
        if (set) return set;
        const h = this.requestHeaders;
        if (p === 'request.path') return h.get(':path') === undefined ? undefined : Buffer.from(h.get(':path')!);
        if (p === 'request.method') return h.get(':method') === undefined ? undefined : Buffer.from(h.get(':method')!);
        if (p === 'request.host') return h.get(':authority') === undefined ? undefined : Buffer.from(h.get(':authority')!);
        return root.property(path);
      },
      setProperty: (path, value) => (this.properties.set(path.join('.'), Buffer.from(value)), Status.OK),
    };
  }
}
