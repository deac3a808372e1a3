// The xDS wire: DiscoveryRequest/Response (SotW and delta) as proto-loader objects, their
// protobuf codecs for grpc-js (from the one protobufjs Root of Envoy's protos), the gRPC method
// paths of each discovery service, and the type URLs. Encoding throws only on a programming error;
// decoding failures surface as a stream error (grpc-js reports them as INTERNAL).

import type protobuf from 'protobufjs';
import { lookupMessageType } from '../config/protos.ts';
import { OBJECT_OPTIONS, toBuffer } from '../config/wkt.ts';
import type { DiscoveryRequest, DiscoveryRequest__Output } from '../generated/envoy/service/discovery/v3/DiscoveryRequest.ts';
import type { DiscoveryResponse, DiscoveryResponse__Output } from '../generated/envoy/service/discovery/v3/DiscoveryResponse.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output } from '../generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.ts';
import type { DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output } from '../generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.ts';

export type { DiscoveryRequest, DiscoveryRequest__Output } from '../generated/envoy/service/discovery/v3/DiscoveryRequest.ts';
export type { DiscoveryResponse, DiscoveryResponse__Output } from '../generated/envoy/service/discovery/v3/DiscoveryResponse.ts';
export type { DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output } from '../generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.ts';
export type { DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output } from '../generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.ts';

export const TYPE_URL = {
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

/** A bidirectional discovery method: its gRPC path and which flavour of messages it carries. */
export interface DiscoveryMethod {
  readonly path: string;
  readonly delta: boolean;
}

const svc = (service: string, method: string, delta: boolean): DiscoveryMethod => ({ path: `/${service}/${method}`, delta });

export const METHODS = {
  streamSecrets: svc('envoy.service.secret.v3.SecretDiscoveryService', 'StreamSecrets', false),
  deltaSecrets: svc('envoy.service.secret.v3.SecretDiscoveryService', 'DeltaSecrets', true),
  streamAggregated: svc('envoy.service.discovery.v3.AggregatedDiscoveryService', 'StreamAggregatedResources', false),
  deltaAggregated: svc('envoy.service.discovery.v3.AggregatedDiscoveryService', 'DeltaAggregatedResources', true),
  streamListeners: svc('envoy.service.listener.v3.ListenerDiscoveryService', 'StreamListeners', false),
  deltaListeners: svc('envoy.service.listener.v3.ListenerDiscoveryService', 'DeltaListeners', true),
  streamClusters: svc('envoy.service.cluster.v3.ClusterDiscoveryService', 'StreamClusters', false),
  deltaClusters: svc('envoy.service.cluster.v3.ClusterDiscoveryService', 'DeltaClusters', true),
  streamEndpoints: svc('envoy.service.endpoint.v3.EndpointDiscoveryService', 'StreamEndpoints', false),
  deltaEndpoints: svc('envoy.service.endpoint.v3.EndpointDiscoveryService', 'DeltaEndpoints', true),
  streamRoutes: svc('envoy.service.route.v3.RouteDiscoveryService', 'StreamRoutes', false),
  deltaRoutes: svc('envoy.service.route.v3.RouteDiscoveryService', 'DeltaRoutes', true),
} as const;

/** Serializer and deserializer of one message type, in the shape grpc-js wants. */
export interface MessageCodec<In, Out> {
  serialize(value: In): Buffer;
  deserialize(bytes: Buffer): Out;
}

function codecFor<In, Out>(typeName: string): MessageCodec<In, Out> {
  let type: protobuf.Type | undefined;
  const t = (): protobuf.Type => {
    type ??= lookupMessageType(typeName);
    if (!type) throw new Error(`xds codec: unknown message type ${typeName}`);
    return type;
  };
  return {
    serialize: (value) => toBuffer(t().encode(t().fromObject(value as Record<string, unknown>)).finish()),
    deserialize: (bytes) => t().toObject(t().decode(bytes), OBJECT_OPTIONS) as Out,
  };
}

export const DISCOVERY_REQUEST = codecFor<DiscoveryRequest, DiscoveryRequest__Output>('envoy.service.discovery.v3.DiscoveryRequest');
export const DISCOVERY_RESPONSE = codecFor<DiscoveryResponse, DiscoveryResponse__Output>('envoy.service.discovery.v3.DiscoveryResponse');
export const DELTA_REQUEST = codecFor<DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output>('envoy.service.discovery.v3.DeltaDiscoveryRequest');
export const DELTA_RESPONSE = codecFor<DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output>('envoy.service.discovery.v3.DeltaDiscoveryResponse');

/** google.rpc.Code INVALID_ARGUMENT: what Envoy puts in a NACK's error_detail.code. */
export const GRPC_INVALID_ARGUMENT = 3;
