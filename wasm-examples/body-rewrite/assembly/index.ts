// A Proxy-Wasm body rewrite (AssemblyScript SDK): every occurrence of the word given as the plugin
// configuration (default "secret") is replaced by "[redacted]" in request and response bodies.
// The plugin needs the whole body, so it answers StopIterationAndBuffer until end_of_stream, then
// reads the buffered body, rewrites it with proxy_set_buffer_bytes (which the SDK does not wrap)
// and continues. The body length changes, so content-length is removed in the header callbacks.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, stream_context, log, LogLevelValues,
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes, BufferTypeValues } from "@solo-io/proxy-runtime/runtime";

@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(buffer_type: u32, start: u32, length: u32, data: usize, size: usize): u32;

const REPLACEMENT = "[redacted]";

class RewriteRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Rewrite(context_id, this);
  }
  word(): string {
    const c = this.getConfiguration();
    return c == "" ? "secret" : c;
  }
}

class Rewrite extends Context {
  word: string;
  constructor(context_id: u32, root: RewriteRoot) {
    super(context_id, root);
    this.word = root.word();
  }
  rewrite(which: BufferTypeValues, size: usize, end: bool): FilterDataStatusValues {
    if (!end) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = String.UTF8.decode(get_buffer_bytes(which, 0, size as u32));
    if (!body.includes(this.word)) return FilterDataStatusValues.Continue;
    const out = String.UTF8.encode(body.replaceAll(this.word, REPLACEMENT));
    const r = proxy_set_buffer_bytes(which as u32, 0, size as u32, changetype<usize>(out), out.byteLength);
    if (r != 0) log(LogLevelValues.error, "proxy_set_buffer_bytes failed: " + r.toString());
    return FilterDataStatusValues.Continue;
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.request.remove("content-length");
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    return this.rewrite(BufferTypeValues.HttpRequestBody, body_buffer_length, end_of_stream);
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.remove("content-length");
    return FilterHeadersStatusValues.Continue;
  }
  onResponseBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    return this.rewrite(BufferTypeValues.HttpResponseBody, body_buffer_length, end_of_stream);
  }
}

registerRootContext((id: u32) => { return new RewriteRoot(id); }, "body_rewrite");
