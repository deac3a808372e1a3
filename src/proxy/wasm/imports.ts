// The `env` host functions of the Proxy-Wasm ABI (0.1.0 - 0.2.1), turning guest pointers into
// HostApi calls. Every function returns a proxy_status_t: a pointer outside guest memory is
// INVALID_MEMORY_ACCESS, anything the host could not do INTERNAL_FAILURE (logged), never a throw
// into the guest. 0.1.0's proxy_continue_request/response and proxy_get_configuration are mapped
// onto their 0.2 equivalents.

import { BufferType, MapType, Status, StreamType, type MetricType } from './abi.ts';
import type { HostApi } from './host-api.ts';
import { MemoryAccessError, type GuestMemory } from './memory.ts';
import { deserializePairs, serializePairs } from './pairs.ts';
import { lookupMessageType } from '../../config/protos.ts';

type HostFn = (...args: Array<number | bigint>) => number | undefined;

const MAX_MAP = 7;
const MAX_BUFFER = 8;
const MAX_STREAM = 3;

/** Sees every host call: its name, raw arguments and the status returned (the sandbox's --trace). */
export type HostCallTracer = (name: string, args: ReadonlyArray<number | bigint>, status: number) => void;

/** Guards a host function: memory errors -> INVALID_MEMORY_ACCESS, other errors -> INTERNAL_FAILURE. */
function guarded(name: string, onError: (name: string, e: unknown) => void, fn: (...a: number[]) => number, trace: HostCallTracer | undefined): HostFn {
  const run = (args: Array<number | bigint>): number => {
    try {
      return fn(...(args as number[]));
    } catch (e) {
      if (e instanceof MemoryAccessError) return Status.INVALID_MEMORY_ACCESS;
      onError(name, e);
      return Status.INTERNAL_FAILURE;
    }
  };
  if (!trace) return (...args) => run(args);
  return (...args) => {
    const r = run(args);
    trace(name, args, r);
    return r;
  };
}

/**
 * The env import object for a module. `memory()` is the instance's memory (available once it is
 * instantiated; host functions are never called before). `onError` logs a host-side failure.
 */
export function envImports(host: HostApi, memory: () => GuestMemory, onError: (name: string, e: unknown) => void, trace?: HostCallTracer): Record<string, HostFn> {
  const m = memory;
  const fns: Record<string, (...a: number[]) => number> = {
    proxy_log: (level, ptr, len) => {
      if (level < 0 || level > 5) return Status.BAD_ARGUMENT;
      // Below the proxy's level: not even decoded (SDKs log a lot at debug).
      if (level >= host.logLevel()) host.log(level, m().string(ptr, len));
      return Status.OK;
    },
    proxy_get_log_level: (out) => (m().setU32(out, host.logLevel()), Status.OK),
    proxy_get_current_time_nanoseconds: (out) => (m().setU64(out, host.nowNs()), Status.OK),
    proxy_set_tick_period_milliseconds: (ms) => (host.setTickPeriod(ms >>> 0), Status.OK),
    proxy_set_effective_context: (id) => host.setEffectiveContext(id >>> 0),
    proxy_done: () => host.done(),

    proxy_get_buffer_status: (type, sizeOut, flagsOut) => {
      if (type < 0 || type > MAX_BUFFER) return Status.BAD_ARGUMENT;
      const b = host.context().buffer(type as BufferType);
      if (!b) return Status.NOT_FOUND;
      m().setU32(sizeOut, b.bytes().length);
      m().setU32(flagsOut, 0);
      return Status.OK;
    },
    proxy_get_buffer_bytes: (type, start, maxSize, ptrOut, sizeOut) => {
      if (type < 0 || type > MAX_BUFFER) return Status.BAD_ARGUMENT;
      const b = host.context().buffer(type as BufferType);
      if (!b) return Status.NOT_FOUND;
      const all = b.bytes();
      start >>>= 0;
      maxSize >>>= 0;
      if (start > all.length) return Status.BAD_ARGUMENT;
      const slice = all.subarray(start, Math.min(all.length, start + maxSize));
      // As proxy-wasm-cpp-host: nothing to copy -> OK without touching the return pointers (the
      // AssemblyScript SDK's onConfigure passes the configuration size where the size pointer goes).
      if (slice.length > 0) m().returnBytes(slice, ptrOut, sizeOut);
      return Status.OK;
    },
    proxy_set_buffer_bytes: (type, start, size, ptr, len) => {
      if (type < 0 || type > MAX_BUFFER) return Status.BAD_ARGUMENT;
      const b = host.context().buffer(type as BufferType);
      if (!b) return Status.NOT_FOUND;
      return b.set(start >>> 0, size >>> 0, m().bytes(ptr, len)) ? Status.OK : Status.BAD_ARGUMENT;
    },
    // ABI 0.1.0: the plugin configuration (in proxy_on_configure) or VM configuration (in proxy_on_vm_start).
    proxy_get_configuration: (ptrOut, sizeOut) => {
      const ctx = host.context();
      const b = ctx.buffer(BufferType.PLUGIN_CONFIGURATION) ?? ctx.buffer(BufferType.VM_CONFIGURATION);
      m().returnBytes(b ? b.bytes() : Buffer.alloc(0), ptrOut, sizeOut);
      return Status.OK;
    },

    proxy_get_header_map_size: (map, sizeOut) => {
      if (map < 0 || map > MAX_MAP) return Status.BAD_ARGUMENT;
      const h = host.context().headerMap(map as MapType);
      if (!h) return Status.NOT_FOUND;
      m().setU32(sizeOut, serializePairs(h.pairs()).length);
      return Status.OK;
    },
    proxy_get_header_map_pairs: (map, ptrOut, sizeOut) => {
      if (map < 0 || map > MAX_MAP) return Status.BAD_ARGUMENT;
      const h = host.context().headerMap(map as MapType);
      if (!h) return Status.NOT_FOUND;
      m().returnBytes(serializePairs(h.pairs()), ptrOut, sizeOut);
      return Status.OK;
    },
    proxy_set_header_map_pairs: (map, ptr, len) => {
      if (map < 0 || map > MAX_MAP) return Status.BAD_ARGUMENT;
      const h = host.context().headerMap(map as MapType);
      if (!h) return Status.NOT_FOUND;
      if (!h.writable) return Status.BAD_ARGUMENT;
      const pairs = deserializePairs(m().bytes(ptr, len));
      if (!pairs) return Status.BAD_ARGUMENT;
      h.setPairs(pairs);
      return Status.OK;
    },
    proxy_get_header_map_value: (map, kp, kl, ptrOut, sizeOut) => {
      if (map < 0 || map > MAX_MAP) return Status.BAD_ARGUMENT;
      const h = host.context().headerMap(map as MapType);
      if (!h) return Status.NOT_FOUND;
      const v = h.get(m().string(kp, kl).toLowerCase());
      if (v === undefined) return Status.NOT_FOUND;
      m().returnBytes(Buffer.from(v, 'utf8'), ptrOut, sizeOut);
      return Status.OK;
    },
    proxy_add_header_map_value: (map, kp, kl, vp, vl) => mutate(map, (h) => h.add(m().string(kp, kl).toLowerCase(), m().string(vp, vl))),
    proxy_replace_header_map_value: (map, kp, kl, vp, vl) => mutate(map, (h) => h.replace(m().string(kp, kl).toLowerCase(), m().string(vp, vl))),
    proxy_remove_header_map_value: (map, kp, kl) => mutate(map, (h) => h.remove(m().string(kp, kl).toLowerCase())),

    proxy_continue_stream: (type) => (type < 0 || type > MAX_STREAM ? Status.BAD_ARGUMENT : host.context().continueStream(type as StreamType)),
    proxy_close_stream: (type) => (type < 0 || type > MAX_STREAM ? Status.BAD_ARGUMENT : host.context().closeStream(type as StreamType)),
    proxy_continue_request: () => host.context().continueStream(StreamType.HTTP_REQUEST),
    proxy_continue_response: () => host.context().continueStream(StreamType.HTTP_RESPONSE),
    proxy_clear_route_cache: () => Status.OK,
    proxy_send_local_response: (status, dp, dl, bp, bl, hp, hl, grpc) => {
      const headers = deserializePairs(m().bytes(hp, hl));
      if (!headers) return Status.BAD_ARGUMENT;
      const g = grpc >>> 0;
      return host.context().sendLocalResponse({ status: status >>> 0, details: m().string(dp, dl), body: m().bytes(bp, bl), headers, grpcStatus: g === 0xffffffff ? -1 : g });
    },
    proxy_get_status: (codeOut, ptrOut, sizeOut) => {
      const s = host.context().callStatus();
      if (!s) return Status.NOT_FOUND;
      m().setU32(codeOut, s.code);
      m().returnBytes(Buffer.from(s.message, 'utf8'), ptrOut, sizeOut);
      return Status.OK;
    },

    proxy_get_property: (pp, pl, ptrOut, sizeOut) => {
      const v = host.context().property(propertyPath(m().bytes(pp, pl)));
      if (v === undefined) return Status.NOT_FOUND;
      m().returnBytes(v, ptrOut, sizeOut);
      return Status.OK;
    },
    proxy_set_property: (pp, pl, vp, vl) => host.context().setProperty(propertyPath(m().bytes(pp, pl)), m().bytes(vp, vl)),

    proxy_define_metric: (type, np, nl, idOut) => {
      if (type < 0 || type > 2) return Status.BAD_ARGUMENT;
      const id = host.defineMetric(type as MetricType, m().string(np, nl));
      if (id === undefined) return Status.BAD_ARGUMENT;
      m().setU32(idOut, id);
      return Status.OK;
    },
    proxy_record_metric: (id, value) => host.recordMetric(id >>> 0, BigInt(value)),
    proxy_increment_metric: (id, delta) => host.incrementMetric(id >>> 0, BigInt(delta)),
    proxy_get_metric: (id, out) => {
      const v = host.getMetric(id >>> 0);
      if (v === undefined) return Status.NOT_FOUND;
      m().setU64(out, v);
      return Status.OK;
    },

    proxy_get_shared_data: (kp, kl, ptrOut, sizeOut, casOut) => {
      const d = host.getSharedData(m().string(kp, kl));
      if (!d) return Status.NOT_FOUND;
      m().returnBytes(d.value, ptrOut, sizeOut);
      m().setU32(casOut, d.cas);
      return Status.OK;
    },
    proxy_set_shared_data: (kp, kl, vp, vl, cas) => host.setSharedData(m().string(kp, kl), m().bytes(vp, vl), cas >>> 0),
    proxy_register_shared_queue: (np, nl, idOut) => (m().setU32(idOut, host.registerQueue(m().string(np, nl))), Status.OK),
    proxy_resolve_shared_queue: (vp, vl, np, nl, idOut) => {
      const id = host.resolveQueue(m().string(vp, vl), m().string(np, nl));
      if (id === undefined) return Status.NOT_FOUND;
      m().setU32(idOut, id);
      return Status.OK;
    },
    proxy_enqueue_shared_queue: (id, vp, vl) => host.enqueue(id >>> 0, m().bytes(vp, vl)),
    proxy_dequeue_shared_queue: (id, ptrOut, sizeOut) => {
      const r = host.dequeue(id >>> 0);
      if (r.status === Status.OK && r.value) m().returnBytes(r.value, ptrOut, sizeOut);
      return r.status;
    },

    proxy_http_call: (up, ul, hp, hl, bp, bl, tp, tl, timeout, idOut) => {
      const headers = deserializePairs(m().bytes(hp, hl));
      const trailers = deserializePairs(m().bytes(tp, tl));
      if (!headers || !trailers) return Status.BAD_ARGUMENT;
      const r = host.httpCall({ cluster: m().string(up, ul), headers, body: m().bytes(bp, bl), trailers, timeoutMs: timeout >>> 0 });
      if (r.status === Status.OK && r.callId !== undefined) m().setU32(idOut, r.callId);
      return r.status;
    },
    proxy_grpc_call: (up, ul, sp, sl, mp, ml, metap, metal, msgp, msgl, timeout, tokenOut) => {
      const metadata = deserializePairs(m().bytes(metap, metal));
      if (!metadata) return Status.BAD_ARGUMENT;
      const r = host.grpcStart({ cluster: grpcCluster(m().bytes(up, ul)), service: m().string(sp, sl), method: m().string(mp, ml), metadata, message: m().bytes(msgp, msgl), timeoutMs: timeout >>> 0 });
      if (r.status === Status.OK && r.token !== undefined) m().setU32(tokenOut, r.token);
      return r.status;
    },
    proxy_grpc_stream: (up, ul, sp, sl, mp, ml, metap, metal, tokenOut) => {
      const metadata = deserializePairs(m().bytes(metap, metal));
      if (!metadata) return Status.BAD_ARGUMENT;
      const r = host.grpcStart({ cluster: grpcCluster(m().bytes(up, ul)), service: m().string(sp, sl), method: m().string(mp, ml), metadata, timeoutMs: 0 });
      if (r.status === Status.OK && r.token !== undefined) m().setU32(tokenOut, r.token);
      return r.status;
    },
    proxy_grpc_send: (token, mp, ml, end) => host.grpcSend(token >>> 0, m().bytes(mp, ml), end !== 0),
    proxy_grpc_cancel: (token) => host.grpcCancel(token >>> 0),
    proxy_grpc_close: (token) => host.grpcClose(token >>> 0),

    proxy_call_foreign_function: (np, nl, ap, al, ptrOut, sizeOut) => {
      const r = host.callForeignFunction(m().string(np, nl), m().bytes(ap, al));
      if (r.status === Status.OK && r.result) m().returnBytes(r.result, ptrOut, sizeOut);
      return r.status;
    },
  };

  function mutate(map: number, fn: (h: NonNullable<ReturnType<ReturnType<HostApi['context']>['headerMap']>>) => void): number {
    if (map < 0 || map > MAX_MAP) return Status.BAD_ARGUMENT;
    const h = host.context().headerMap(map as MapType);
    if (!h) return Status.NOT_FOUND;
    if (!h.writable) return Status.BAD_ARGUMENT;
    fn(h);
    return Status.OK;
  }

  const out: Record<string, HostFn> = {};
  for (const [name, fn] of Object.entries(fns)) out[name] = guarded(name, onError, fn, trace);
  return out;
}

/**
 * The gRPC upstream as SDKs send it: a cluster name, or (Envoy's form) a serialised GrpcService
 * whose envoy_grpc.cluster_name names it.
 */
export function grpcCluster(bytes: Buffer): string {
  if (bytes.length > 0 && bytes[0] === 0x0a) {
    try {
      type Svc = { envoyGrpc?: { clusterName?: string }; envoy_grpc?: { cluster_name?: string } };
      const svc = lookupMessageType('envoy.config.core.v3.GrpcService')?.decode(bytes) as Svc | undefined;
      const name = svc?.envoyGrpc?.clusterName ?? svc?.envoy_grpc?.cluster_name;
      if (name) return name;
    } catch {
      // not a GrpcService: a plain name
    }
  }
  return bytes.toString('utf8');
}

/** A property path as SDKs send it: segments separated by NUL bytes (a trailing NUL is ignored). */
export function propertyPath(bytes: Buffer): string[] {
  const s = bytes.toString('utf8');
  const parts = s.split('\0');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Every env function legate provides (a module importing another one fails to load, naming it). */
export const ENV_FUNCTIONS: ReadonlySet<string> = new Set(Object.keys(envImports({} as HostApi, () => ({}) as GuestMemory, () => undefined)));
