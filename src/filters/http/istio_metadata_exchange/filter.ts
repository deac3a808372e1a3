// Istio's HTTP metadata exchange (istio/proxy's peer_metadata filter, `istio_headers` methods):
// - request: the downstream peer from `x-envoy-peer-metadata` (base64 of a serialized Struct of its
//   node metadata) into filter state `downstream_peer`; both exchange headers removed; this proxy's
//   own id and metadata set on the request to the upstream.
// - response: the upstream peer from the response's headers into `upstream_peer`, headers removed;
//   this proxy's own sent back only as far as the request carried the peer's (id, metadata).
// A header that does not decode is no peer (the stream goes on, as in Istio).

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { routeCluster } from '../route-cluster.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { localNode } from '../../../proxy/local-info.ts';
import { decodeStruct, encodeStruct, type JsonStruct } from '../../common/istio/struct-codec.ts';
import { workloadFromStruct, workloadToStruct, type WorkloadMetadata } from '../../common/istio/workload.ts';
import { setPeer, type PeerKey } from '../../common/istio/peer-state.ts';
import type { HeaderPropagation, MetadataExchangeConfig } from './config.ts';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** The largest peer metadata header decoded (base64 text); Istio's are a few hundred bytes. */
const MAX_PEER_HEADER = 64 * 1024;
/** Distinct peer header values remembered per filter config and worker, each at most this long (<= 4 MB in all). */
const MAX_REMEMBERED_PEERS = 1024;
const MAX_REMEMBERED_VALUE = 4096;

export class MetadataExchangeFactory implements HttpFilterFactory<MetadataExchangeConfig> {
  readonly config: MetadataExchangeConfig;
  readonly rt: RuntimeContext;
  /** This proxy's node id and its metadata as Istio sends it (computed once). */
  readonly ownId: string;
  readonly ownValue: string;
  /** Header values seen -> the peer they decode to (null: they do not). */
  readonly #peers = new Map<string, WorkloadMetadata | null>();

  constructor(config: MetadataExchangeConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
    const node = localNode();
    this.ownId = node?.id ?? '';
    const own = workloadFromStruct((node?.metadata ?? {}) as JsonStruct, config.additionalLabels);
    this.ownValue = encodeStruct(workloadToStruct(own)).toString('base64');
  }

  create(_config: MetadataExchangeConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new MetadataExchangeFilter(this, callbacks);
  }

  /**
   * A peer's metadata header value -> its workload; undefined when it does not decode. A peer sends
   * the same value on every request, so values are remembered (by the whole value, never by the id
   * a peer claims).
   */
  decodePeer(value: string): WorkloadMetadata | undefined {
    if (value.length > MAX_PEER_HEADER) return undefined;
    const known = this.#peers.get(value);
    if (known !== undefined) return known ?? undefined;
    let peer: WorkloadMetadata | null;
    try {
      peer = workloadFromStruct(decodeStruct(Buffer.from(value, 'base64')), this.config.additionalLabels);
    } catch {
      peer = null;
    }
    if (value.length <= MAX_REMEMBERED_VALUE) {
      if (this.#peers.size >= MAX_REMEMBERED_PEERS) this.#peers.clear();
      this.#peers.set(value, peer);
    }
    return peer ?? undefined;
  }
}

export class MetadataExchangeFilter implements HttpFilter {
  readonly #f: MetadataExchangeFactory;
  readonly #cb: HttpFilterCallbacks;
  #peerIdReceived = false;
  #peerReceived = false;

  constructor(factory: MetadataExchangeFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const c = this.#f.config;
    if (c.downstreamHeaders) {
      this.#peerIdReceived = headers.get(PEER_METADATA_ID_HEADER) !== undefined;
      this.#peerReceived = headers.get(PEER_METADATA_HEADER) !== undefined;
      this.#discover(headers, 'downstream_peer');
    }
    const up = c.upstreamPropagation;
    if (up && !this.#skip(up, headers)) {
      headers.set(PEER_METADATA_ID_HEADER, this.#f.ownId);
      headers.set(PEER_METADATA_HEADER, this.#f.ownValue);
    }
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    const c = this.#f.config;
    if (c.upstreamHeaders) this.#discover(headers, 'upstream_peer');
    const down = c.downstreamPropagation;
    const request = this.#cb.streamInfo.requestHeaders;
    if (down && !(request && this.#skip(down, request))) {
      if (this.#peerIdReceived) headers.set(PEER_METADATA_ID_HEADER, this.#f.ownId);
      if (this.#peerReceived) headers.set(PEER_METADATA_HEADER, this.#f.ownValue);
    }
    return FilterHeadersStatus.Continue;
  }

  #discover(headers: HeaderMap, key: PeerKey): void {
    const value = headers.get(PEER_METADATA_HEADER);
    if (value) {
      const peer = this.#f.decodePeer(value);
      if (peer) setPeer(this.#cb.streamInfo, key, peer);
    }
    headers.remove(PEER_METADATA_ID_HEADER);
    headers.remove(PEER_METADATA_HEADER);
  }

  /** Istio's skipMXHeaders: PassthroughCluster or `istio.external` (with skip_external_clusters), or `istio.disable_mx`. */
  #skip(p: HeaderPropagation, headers: HeaderMap): boolean {
    const name = routeCluster(this.#cb, headers);
    if (name === undefined) return false;
    if (p.skipExternalClusters && name === 'PassthroughCluster') return true;
    const istio = this.#f.rt.clusterManager.get(name)?.info.metadata?.istio;
    if (!istio) return false;
    return (p.skipExternalClusters && istio.external === true) || istio.disable_mx === true;
  }
}
