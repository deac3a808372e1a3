// A Proxy-Wasm request counter (AssemblyScript SDK): every request increments a counter kept in
// shared data (key "requests", an 8-byte little-endian integer) with compare-and-swap, retrying
// when another worker got there first, so the count is process-wide. The response carries
// x-request-count: <count after this request>, and the plugin-defined gauge
// `shared_counter_requests` shows the latest count in /stats (wasmcustom.*) and /stats/prometheus.
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, Gauge } from "@solo-io/proxy-runtime";
import { free } from "@solo-io/proxy-runtime/malloc";
import * as imports from "@solo-io/proxy-runtime/imports";

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;

let gauge: Gauge | null = null;

/** Adds one to the shared counter and returns the new value. */
function increment(): u64 {
  const key = String.UTF8.encode("requests");
  const out = new ArrayBuffer(12); // value pointer, value size, cas
  const p = changetype<usize>(out);
  const value = new ArrayBuffer(8);
  for (let attempt = 0; attempt < 100; attempt++) {
    let current: u64 = 0;
    let cas: u32 = 0;
    const r = imports.proxy_get_shared_data(changetype<usize>(key), key.byteLength, p, p + 4, p + 8) as u32;
    if (r == OK) {
      const ptr = load<usize>(p);
      if (load<u32>(p + 4) == 8) current = load<u64>(ptr);
      if (ptr != 0) free(ptr);
      cas = load<u32>(p + 8);
    } else if (r != NOT_FOUND) {
      return 0;
    }
    store<u64>(changetype<usize>(value), current + 1);
    const s = imports.proxy_set_shared_data(changetype<usize>(key), key.byteLength, changetype<usize>(value), 8, cas) as u32;
    if (s == OK) return current + 1;
    if (s != CAS_MISMATCH) return 0;
  }
  return 0;
}

class CounterRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CounterStream(context_id, this);
  }
  onConfigure(configuration_size: u32): bool {
    gauge = new Gauge("shared_counter_requests");
    // Create the key before any request: a set with cas 0 is unconditional, so two workers
    // inserting it on their first request could both write 1. Writing 0 twice is harmless.
    const key = String.UTF8.encode("requests");
    const out = new ArrayBuffer(12);
    const p = changetype<usize>(out);
    if ((imports.proxy_get_shared_data(changetype<usize>(key), key.byteLength, p, p + 4, p + 8) as u32) == NOT_FOUND) {
      const zero = new ArrayBuffer(8);
      imports.proxy_set_shared_data(changetype<usize>(key), key.byteLength, changetype<usize>(zero), 8, 0);
    } else if (load<usize>(p) != 0) {
      free(load<usize>(p));
    }
    return true;
  }
}

class CounterStream extends Context {
  count: u64 = 0;
  constructor(context_id: u32, root: CounterRoot) {
    super(context_id, root);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    this.count = increment();
    if (gauge != null) imports.proxy_record_metric((gauge as Gauge).metric_id, this.count);
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-request-count", this.count.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((id: u32) => { return new CounterRoot(id); }, "shared_counter");
