// What a Proxy-Wasm callback reads while an HTTP call response or a gRPC event is being delivered:
// the context's own maps and buffers, with the response's (or the event's) headers, body and
// status laid over them, read-only.

import { BufferType, MapType } from './abi.ts';
import type { BufferAccess, ContextApi, HeaderMapAccess } from './host-api.ts';
import type { Pairs } from './pairs.ts';
import type { HttpCallResponse } from './vm-api.ts';

/** What a gRPC callback can read while it runs: its message or metadata, or the final status. */
export interface GrpcEventOverlay {
  readonly message?: Buffer;
  readonly initial?: Pairs;
  readonly trailing?: Pairs;
  readonly status?: { readonly code: number; readonly message: string };
}

/** `api` as a callback sees it while `grpc` (a gRPC event) or `resp` (an HTTP call response) is delivered. */
export function overlayContext(api: ContextApi, grpc: GrpcEventOverlay | undefined, resp: HttpCallResponse | undefined): ContextApi {
  if (grpc) {
    return {
      ...api,
      headerMap: (m) => (m === MapType.GRPC_CALL_INITIAL_METADATA && grpc.initial ? readOnlyMap(grpc.initial) : m === MapType.GRPC_CALL_TRAILING_METADATA && grpc.trailing ? readOnlyMap(grpc.trailing) : api.headerMap(m)),
      buffer: (t) => (t === BufferType.GRPC_CALL_MESSAGE && grpc.message ? readOnly(grpc.message) : api.buffer(t)),
      callStatus: () => grpc.status ?? api.callStatus(),
    };
  }
  if (!resp) return api;
  return {
    ...api,
    headerMap: (m) => (m === MapType.HTTP_CALL_RESPONSE_HEADERS ? readOnlyMap(resp.headers) : m === MapType.HTTP_CALL_RESPONSE_TRAILERS ? readOnlyMap(resp.trailers) : api.headerMap(m)),
    buffer: (t) => (t === BufferType.HTTP_CALL_RESPONSE_BODY ? readOnly(resp.body) : api.buffer(t)),
    callStatus: () => ({ code: resp.status, message: resp.message }),
  };
}

/** A buffer the plugin can read but not change. */
export function readOnly(b: Buffer): BufferAccess {
  return { bytes: () => b, set: () => false };
}

/** A header map the plugin can read but not change. */
export function readOnlyMap(pairs: Pairs): HeaderMapAccess {
  return {
    pairs: () => pairs,
    get: (k) => pairs.find(([n]) => n.toLowerCase() === k)?.[1],
    writable: false,
    add: () => undefined,
    replace: () => undefined,
    remove: () => undefined,
    setPairs: () => undefined,
  };
}
