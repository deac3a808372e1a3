// Istio's workload metadata (istio/proxy's WorkloadMetadataObject): who a peer is, read from a node
// metadata Struct (the bootstrap's `node.metadata`, or a peer's `x-envoy-peer-metadata` header), and
// the Struct this proxy sends of itself. Only the fields Istio's telemetry reads are kept.

import type { JsonStruct, JsonValue } from './struct-codec.ts';

export type WorkloadType = 'pod' | 'deployment' | 'job' | 'cronjob' | undefined;

export interface WorkloadMetadata {
  /** NAME: the pod. */
  readonly instanceName: string;
  /** CLUSTER_ID. */
  readonly clusterName: string;
  readonly namespace: string;
  /** WORKLOAD_NAME. */
  readonly workloadName: string;
  /** LABELS `service.istio.io/canonical-name` / `-revision`. */
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  /** LABELS `app` / `version`. */
  readonly appName: string;
  readonly appVersion: string;
  /** From OWNER (`kubernetes://apis/apps/v1/namespaces/<ns>/<type>s/<workload>`). */
  readonly workloadType: WorkloadType;
  /** The `additional_labels` the filter was told to keep, in the peer's order. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
}

const OWNER_PREFIX = 'kubernetes://apis/apps/v1/namespaces/';
const TYPES: ReadonlySet<string> = new Set(['pod', 'deployment', 'job', 'cronjob']);

function str(v: JsonValue | undefined): string {
  return typeof v === 'string' ? v : '';
}

/** Istio's parseOwner: `.../<type>s/<workload>` -> type, when the owner ends with that workload. */
function parseOwner(owner: string, workload: string): WorkloadType {
  if (owner.length <= workload.length + 2) return undefined;
  const head = owner.slice(0, owner.length - workload.length - 2);
  const type = head.slice(head.lastIndexOf('/') + 1);
  return TYPES.has(type) ? (type as WorkloadType) : undefined;
}

/** Reads a node metadata Struct (JSON form). Fields that are not strings read as empty. */
export function workloadFromStruct(s: Readonly<JsonStruct>, additionalLabels: ReadonlySet<string> = new Set()): WorkloadMetadata {
  const rawLabels = s.LABELS;
  const labels = rawLabels && typeof rawLabels === 'object' && !Array.isArray(rawLabels) ? rawLabels : {};
  const workloadName = str(s.WORKLOAD_NAME);
  const extra: Array<readonly [string, string]> = [];
  for (const [k, v] of Object.entries(labels)) if (additionalLabels.has(k)) extra.push([k, str(v)]);
  return {
    instanceName: str(s.NAME),
    clusterName: str(s.CLUSTER_ID),
    namespace: str(s.NAMESPACE),
    workloadName,
    canonicalName: str(labels['service.istio.io/canonical-name']),
    canonicalRevision: str(labels['service.istio.io/canonical-revision']),
    appName: str(labels.app),
    appVersion: str(labels.version),
    workloadType: parseOwner(str(s.OWNER), workloadName),
    labels: extra,
  };
}

/** The Struct Istio sends of a workload (convertWorkloadMetadataToStruct): empty fields left out, LABELS always there. */
export function workloadToStruct(w: WorkloadMetadata): JsonStruct {
  const out: JsonStruct = {};
  if (w.instanceName) out.NAME = w.instanceName;
  if (w.namespace) out.NAMESPACE = w.namespace;
  if (w.workloadName) out.WORKLOAD_NAME = w.workloadName;
  if (w.clusterName) out.CLUSTER_ID = w.clusterName;
  const labels: JsonStruct = {};
  if (w.canonicalName) labels['service.istio.io/canonical-name'] = w.canonicalName;
  if (w.canonicalRevision) labels['service.istio.io/canonical-revision'] = w.canonicalRevision;
  if (w.appName) labels.app = w.appName;
  if (w.appVersion) labels.version = w.appVersion;
  for (const [k, v] of w.labels) labels[k] = v;
  out.LABELS = labels;
  if (w.workloadType) out.OWNER = `${OWNER_PREFIX}${w.namespace}/${w.workloadType}s/${w.workloadName}`;
  return out;
}

/**
 * Istio's endpoint telemetry metadata (`filter_metadata.istio.workload` on an endpoint):
 * `workload;namespace;canonical-name;canonical-revision;cluster`. Undefined when malformed.
 */
export function workloadFromEndpoint(encoded: string): WorkloadMetadata | undefined {
  const parts = encoded.split(';');
  if (parts.length < 5) return undefined;
  return {
    instanceName: '',
    clusterName: parts[4]!,
    namespace: parts[1]!,
    workloadName: parts[0]!,
    canonicalName: parts[2]!,
    canonicalRevision: parts[3]!,
    appName: '',
    appVersion: '',
    workloadType: undefined,
    labels: [],
  };
}

/** A peer's workload metadata as filter state (a class, so readers know what they got). */
export class PeerMetadata {
  readonly workload: WorkloadMetadata;
  constructor(workload: WorkloadMetadata) {
    this.workload = workload;
  }
}
