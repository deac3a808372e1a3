// envoy.filters.network.wasm at run time: one Proxy-Wasm stream context per TCP connection, in
// front of tcp_proxy. proxy_on_new_connection when it opens; proxy_on_downstream_data /
// proxy_on_upstream_data for the bytes each way (the plugin may read and rewrite DOWNSTREAM_DATA /
// UPSTREAM_DATA; PAUSE holds the bytes, which grow until a later callback says CONTINUE);
// proxy_on_*_connection_close as the sides close. A trap closes the connection, or lets the bytes
// through untouched when fail_open.

import { BufferType, PeerType, Status, StreamType } from '../../../proxy/wasm/abi.ts';
import type { BufferAccess, ContextApi } from '../../../proxy/wasm/host-api.ts';
import { maxMemoryFrom, WasmPluginRuntime } from '../../../proxy/wasm/plugin-runtime.ts';
import { PluginStream } from '../../../proxy/wasm/plugin-stream.ts';
import type { WasmPluginConfig } from '../../../proxy/wasm/plugin-config.ts';
import { pluginProperty, rootContextApi, streamInfoProperty } from '../../../proxy/wasm/properties.ts';
import type { RuntimeContext } from '../../registry.ts';
import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';

const EMPTY: Buffer = Buffer.alloc(0);

export class WasmNetworkFilterFactory implements NetworkFilterFactory<WasmPluginConfig> {
  readonly #runtime: WasmPluginRuntime;
  constructor(config: WasmPluginConfig, ctx: RuntimeContext) {
    this.#runtime = new WasmPluginRuntime(config, { stats: ctx.stats, clusterManager: ctx.clusterManager, maxMemoryBytes: maxMemoryFrom(ctx.runtime) });
    this.#runtime.root(rootContextApi(config)); // start with the config, as Envoy
  }
  create(_config: WasmPluginConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return new WasmNetworkFilter(this.#runtime, callbacks);
  }
}

class WasmNetworkFilter implements NetworkFilter {
  readonly #rt: WasmPluginRuntime;
  readonly #cb: NetworkFilterCallbacks;
  readonly #ps: PluginStream;
  /** Bytes the plugin sees (and held while it pauses), per direction. */
  #down: Buffer = EMPTY;
  #up: Buffer = EMPTY;
  #closed = { downstream: false, upstream: false };
  readonly #filterState = new Map<string, Buffer>();

  constructor(rt: WasmPluginRuntime, cb: NetworkFilterCallbacks) {
    this.#rt = rt;
    this.#cb = cb;
    this.#ps = new PluginStream(rt, { api: () => this.#api(), onFailClosed: () => cb.close('reset') });
  }

  #api(): ContextApi {
    const buf = (which: '#down' | '#up'): BufferAccess => ({
      bytes: () => (which === '#down' ? this.#down : this.#up),
      set: (start, size, value) => {
        const cur = which === '#down' ? this.#down : this.#up;
        const at = Math.min(start, cur.length);
        const next = Buffer.concat([cur.subarray(0, at), value, cur.subarray(Math.min(cur.length, at + size))]);
        if (which === '#down') this.#down = next;
        else this.#up = next;
        return true;
      },
    });
    const c = this.#rt.config;
    const info = this.#cb.streamInfo;
    return {
      headerMap: () => undefined,
      buffer: (t) => (t === BufferType.DOWNSTREAM_DATA ? buf('#down') : t === BufferType.UPSTREAM_DATA ? buf('#up') : undefined),
      continueStream: (t) => {
        if (t !== StreamType.DOWNSTREAM && t !== StreamType.UPSTREAM) return Status.BAD_ARGUMENT;
        this.#cb.continueReading();
        return Status.OK;
      },
      closeStream: (t) => {
        if (t !== StreamType.DOWNSTREAM && t !== StreamType.UPSTREAM) return Status.BAD_ARGUMENT;
        this.#cb.close('flush');
        return Status.OK;
      },
      sendLocalResponse: () => Status.BAD_ARGUMENT,
      property: (path) => {
        const p = path.join('.');
        return this.#filterState.get(p) ?? streamInfoProperty(info, p) ?? pluginProperty(c, p);
      },
      setProperty: (path, value) => (this.#filterState.set(path.join('.'), Buffer.from(value)), Status.OK),
      callStatus: () => undefined,
    };
  }

  onNewConnection(): (typeof NetworkFilterStatus)[keyof typeof NetworkFilterStatus] {
    const r = this.#ps.call('proxy_on_new_connection');
    if (r === undefined) return this.#ps.bypass ? NetworkFilterStatus.Continue : NetworkFilterStatus.StopIteration;
    return r === 0 ? NetworkFilterStatus.Continue : NetworkFilterStatus.StopIteration;
  }

  #data(side: 'down' | 'up', data: Buffer, end: boolean): Buffer {
    if (this.#ps.bypass) {
      const held = side === 'down' ? this.#down : this.#up;
      if (held.length === 0) return data;
      this.#set(side, EMPTY);
      return Buffer.concat([held, data]);
    }
    const seen = side === 'down' ? this.#down : this.#up;
    this.#set(side, seen.length > 0 ? Buffer.concat([seen, data]) : data);
    const size = (side === 'down' ? this.#down : this.#up).length;
    const r = this.#ps.call(side === 'down' ? 'proxy_on_downstream_data' : 'proxy_on_upstream_data', size, end ? 1 : 0);
    if (r === undefined) return this.#ps.bypass ? this.#data(side, EMPTY, end) : EMPTY;
    if (r !== 0 && !end) return EMPTY; // PAUSE: keep holding.
    const out = side === 'down' ? this.#down : this.#up;
    this.#set(side, EMPTY);
    return out;
  }

  #set(side: 'down' | 'up', b: Buffer): void {
    if (side === 'down') this.#down = b;
    else this.#up = b;
  }

  onData(data: Buffer, endStream: boolean): Buffer {
    return this.#data('down', data, endStream);
  }

  onWrite(data: Buffer, endStream: boolean): Buffer {
    return this.#data('up', data, endStream);
  }

  onClose(side: 'downstream' | 'upstream', peer: 'local' | 'remote'): void {
    if (this.#closed[side]) return;
    this.#closed[side] = true;
    if (this.#ps.live) this.#ps.call(side === 'downstream' ? 'proxy_on_downstream_connection_close' : 'proxy_on_upstream_connection_close', peer === 'local' ? PeerType.LOCAL : PeerType.REMOTE);
    if (this.#closed.downstream && this.#closed.upstream) this.#ps.finish();
  }
}
