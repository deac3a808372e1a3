// The bootstrap's node (Envoy's LocalInfo): who this proxy is. Set once per thread, before any
// listener serves, and read by what reports it (Proxy-Wasm node.* properties, the health check
// filter's x-envoy-upstream-healthchecked-cluster).

export interface LocalNode {
  readonly id: string;
  /** node.cluster (--service-cluster). */
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

let node: LocalNode | undefined;

export function setLocalNode(n: LocalNode | undefined): void {
  node = n;
}

export function localNode(): LocalNode | undefined {
  return node;
}
