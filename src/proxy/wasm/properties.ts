// Proxy-Wasm properties legate can answer from a plugin's config and a connection's StreamInfo,
// encoded as Envoy encodes them: strings as UTF-8, integers as 8-byte little-endian, booleans as
// one byte. The HTTP filter adds request.* and response.* on top (filters/http/wasm/context.ts).

import { Status } from './abi.ts';
import type { ContextApi } from './host-api.ts';
import type { WasmPluginConfig } from './plugin-config.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import { hostKey } from '../host-port.ts';
import { localNode } from '../local-info.ts';

export const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(Math.trunc(n)));
  return b;
};
export const str = (s: string | undefined): Buffer | undefined => (s === undefined ? undefined : Buffer.from(s, 'utf8'));
export const bool = (v: boolean): Buffer => Buffer.of(v ? 1 : 0);

/** Who a plugin is (its plugin_* properties). */
export type PluginIdentity = Pick<WasmPluginConfig, 'name' | 'rootId' | 'vmId'>;


/** plugin_name, plugin_root_id, plugin_vm_id, node.*: what a root context can read. */
export function pluginProperty(c: PluginIdentity, path: string): Buffer | undefined {
  if (path.startsWith('node.') || path.startsWith('xds.node.')) {
    const p = path.startsWith('xds.') ? path.slice(4) : path;
    const node = localNode();
    if (!node) return undefined;
    if (p === 'node.id') return str(node.id);
    if (p === 'node.cluster') return str(node.cluster);
    if (p.startsWith('node.metadata.')) {
      const v = node.metadata[p.slice('node.metadata.'.length)];
      return v === undefined ? undefined : str(typeof v === 'string' ? v : JSON.stringify(v));
    }
    return undefined;
  }
  switch (path) {
    case 'plugin_name':
      return str(c.name);
    case 'plugin_root_id':
      return str(c.rootId);
    case 'plugin_vm_id':
      return str(c.vmId);
    default:
      return undefined;
  }
}

/** What a root context sees: plugin_*, node.* properties and nothing else. */
export function rootContextApi(c: PluginIdentity): ContextApi {
  return {
    headerMap: () => undefined,
    buffer: () => undefined,
    continueStream: () => Status.BAD_ARGUMENT,
    closeStream: () => Status.BAD_ARGUMENT,
    sendLocalResponse: () => Status.BAD_ARGUMENT,
    property: (path) => pluginProperty(c, path.join('.')),
    setProperty: () => Status.NOT_FOUND,
    callStatus: () => undefined,
  };
}

/** source.*, destination.*, connection.*, upstream.*, cluster_name, route_name of a connection or stream. */
export function streamInfoProperty(info: StreamInfo, p: string): Buffer | undefined {
  switch (p) {
    case 'source.address':
      return str(hostKey(info.downstreamRemote.address, info.downstreamRemote.port));
    case 'source.port':
      return u64(info.downstreamRemote.port);
    case 'destination.address':
      return str(hostKey(info.downstreamLocal.address, info.downstreamLocal.port));
    case 'destination.port':
      return u64(info.downstreamLocal.port);
    case 'connection.id':
      return u64(info.connectionId);
    case 'connection.mtls':
      return bool(info.downstreamTls?.peerCertificateValidated === true);
    case 'connection.tls_version':
      return str(info.downstreamTls?.version);
    case 'connection.requested_server_name':
      return str(info.requestedServerName ?? '');
    case 'connection.uri_san_peer_certificate':
      return info.downstreamTls ? str(info.downstreamTls.peerUriSans[0] ?? '') : undefined;
    case 'cluster_name':
    case 'xds.cluster_name':
      return str(info.clusterName);
    case 'route_name':
    case 'xds.route_name':
      return str(info.routeName);
    case 'upstream.address':
      return info.upstreamHost ? str(hostKey(info.upstreamHost.address, info.upstreamHost.port)) : undefined;
    case 'upstream.port':
      return info.upstreamHost ? u64(info.upstreamHost.port) : undefined;
    default:
      return undefined;
  }
}
