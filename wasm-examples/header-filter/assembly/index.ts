// A Proxy-Wasm HTTP filter built with the AssemblyScript SDK (@solo-io/proxy-runtime), used by
// legate's tests and docs. Root id "header_filter"; its plugin configuration is a short string.
//   request:  x-wasm-deny present → local 403 "denied by wasm" (with x-wasm-denied: yes);
//             path /trap → the plugin traps (unreachable);
//             otherwise adds x-wasm-request: <configuration> and counts wasm_header_filter_requests.
//   response: adds x-wasm-response: <configuration> and x-wasm-root-id: <plugin_root_id property>.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
  send_local_response, GrpcStatusValues, HeaderPair, Counter, log, LogLevelValues,
} from "@solo-io/proxy-runtime";
import { get_property } from "@solo-io/proxy-runtime/runtime";

let requests: Counter | null = null;

class HeaderFilterRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HeaderFilter(context_id, this);
  }
  onConfigure(configuration_size: u32): bool {
    const ok = super.onConfigure(configuration_size);
    requests = new Counter("wasm_header_filter_requests");
    log(LogLevelValues.info, "header_filter configured with '" + this.getConfiguration() + "'");
    return ok;
  }
}

class HeaderFilter extends Context {
  config: string;
  constructor(context_id: u32, root_context: HeaderFilterRoot) {
    super(context_id, root_context);
    this.config = root_context.getConfiguration();
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get("x-wasm-deny") != "") {
      const headers: HeaderPair[] = [new HeaderPair(String.UTF8.encode("x-wasm-denied"), String.UTF8.encode("yes"))];
      send_local_response(403, "wasm_denied", String.UTF8.encode("denied by wasm"), headers, GrpcStatusValues.PermissionDenied);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (stream_context.headers.request.get(":path") == "/trap") {
      unreachable();
    }
    stream_context.headers.request.add("x-wasm-request", this.config);
    if (requests != null) (requests as Counter).increment(1);
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-wasm-response", this.config);
    stream_context.headers.response.add("x-wasm-root-id", String.UTF8.decode(get_property("plugin_root_id")));
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new HeaderFilterRoot(context_id); }, "header_filter");
