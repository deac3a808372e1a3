// A Proxy-Wasm authorization filter (AssemblyScript SDK): every request is held while the plugin
// asks an auth service — `proxy_http_call` to the cluster named in the plugin configuration
// (default "auth"), GET /check with the request's `authorization` header — and then goes on when
// the service answers 200, or gets a local 403 (with the service's `x-auth-reason`) otherwise.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, BaseContext, registerRootContext, FilterHeadersStatusValues, stream_context,
  send_local_response, GrpcStatusValues, HeaderPair, log, LogLevelValues, WasmResultValues,
} from "@solo-io/proxy-runtime";

function pair(k: string, v: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(k), String.UTF8.encode(v));
}

class AuthRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new AuthCall(context_id, this);
  }
  cluster(): string {
    const c = this.getConfiguration();
    return c == "" ? "auth" : c;
  }
}

class AuthCall extends Context {
  root: AuthRoot;
  constructor(context_id: u32, root_context: AuthRoot) {
    super(context_id, root_context);
    this.root = root_context;
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const headers: HeaderPair[] = [
      pair(":method", "GET"),
      pair(":path", "/check"),
      pair(":authority", "auth"),
      pair("authorization", stream_context.headers.request.get("authorization")),
    ];
    const r = this.root.httpCall(this.root.cluster(), headers, new ArrayBuffer(0), [], 2000, this, (origin: BaseContext, h: u32, body_size: usize, t: u32): void => {
      const ctx = origin as AuthCall;
      const status = stream_context.headers.http_callback.get(":status");
      if (status == "200") {
        log(LogLevelValues.info, "auth allowed");
        ctx.continueRequest();
        return;
      }
      const reason = h == 0 ? "auth service unavailable" : stream_context.headers.http_callback.get("x-auth-reason");
      log(LogLevelValues.info, "auth denied: " + reason);
      send_local_response(403, "wasm_auth_denied", String.UTF8.encode("forbidden: " + reason), [], GrpcStatusValues.PermissionDenied);
    });
    if (r != WasmResultValues.Ok) {
      send_local_response(500, "wasm_auth_call_failed", String.UTF8.encode("auth call failed"), [], GrpcStatusValues.Internal);
    }
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new AuthRoot(context_id); }, "auth_call");
