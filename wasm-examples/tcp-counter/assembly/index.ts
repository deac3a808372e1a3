// A Proxy-Wasm network (TCP) filter (AssemblyScript SDK): counts connections and the bytes each way
// in plugin-defined counters (tcp_counter_connections, tcp_counter_downstream_bytes,
// tcp_counter_upstream_bytes) and logs a line per connection when the client side closes. The SDK
// (0.1.8) does not export the network callbacks, so this module exports them itself and hands them
// to its stream contexts (cast: AssemblyScript 0.17 does not dispatch these overrides virtually).
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, Counter, log, LogLevelValues, FilterStatusValues } from "@solo-io/proxy-runtime";
import { PeerTypeValues } from "@solo-io/proxy-runtime/runtime";
import { getContext } from "@solo-io/proxy-runtime/runtime";

let connections: Counter | null = null;
let downBytes: Counter | null = null;
let upBytes: Counter | null = null;

class CounterRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Connection(context_id, this);
  }
  onConfigure(configuration_size: u32): bool {
    connections = new Counter("tcp_counter_connections");
    downBytes = new Counter("tcp_counter_downstream_bytes");
    upBytes = new Counter("tcp_counter_upstream_bytes");
    return true;
  }
}

class Connection extends Context {
  down: usize = 0;
  up: usize = 0;
  constructor(context_id: u32, root: CounterRoot) {
    super(context_id, root);
  }
  onNewConnection(): FilterStatusValues {
    if (connections != null) (connections as Counter).increment(1);
    return FilterStatusValues.Continue;
  }
  onDownstreamData(size: usize, end: bool): FilterStatusValues {
    this.down += size;
    if (downBytes != null) (downBytes as Counter).increment(size as u32);
    return FilterStatusValues.Continue;
  }
  onUpstreamData(size: usize, end: bool): FilterStatusValues {
    this.up += size;
    if (upBytes != null) (upBytes as Counter).increment(size as u32);
    return FilterStatusValues.Continue;
  }
  onDownstreamConnectionClose(t: PeerTypeValues): void {
    log(LogLevelValues.info, "connection closed: " + this.down.toString() + " bytes from downstream, " + this.up.toString() + " bytes from upstream");
  }
}

export function proxy_on_new_connection(context_id: u32): FilterStatusValues {
  return (getContext(context_id) as Connection).onNewConnection();
}
export function proxy_on_downstream_data(context_id: u32, size: usize, end: u32): FilterStatusValues {
  return (getContext(context_id) as Connection).onDownstreamData(size, end != 0);
}
export function proxy_on_upstream_data(context_id: u32, size: usize, end: u32): FilterStatusValues {
  return (getContext(context_id) as Connection).onUpstreamData(size, end != 0);
}
export function proxy_on_downstream_connection_close(context_id: u32, peer: u32): void {
  (getContext(context_id) as Connection).onDownstreamConnectionClose(peer);
}
export function proxy_on_upstream_connection_close(context_id: u32, peer: u32): void {
  (getContext(context_id) as Connection).onUpstreamConnectionClose(peer);
}

registerRootContext((id: u32) => { return new CounterRoot(id); }, "tcp_counter");
