// Test fixture: the test control plane's resources — per type URL, named resources already
// packed as Anys with a per-resource version, and a SotW version_info per type. Every change
// bumps a counter and notifies the control plane, which pushes to the open streams; update()
// groups changes to several types into one atomic change, announced in ADS order (CDS, EDS,
// LDS, RDS, SDS) once the whole change is in place.

import { EventEmitter } from 'node:events';
import { decodeJson, encodeAny, typeUrlOf } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Issued } from '../certs.ts';

export const SECRET_TYPE = 'envoy.extensions.transport_sockets.tls.v3.Secret';
export const SECRET_TYPE_URL = typeUrlOf(SECRET_TYPE);
export const LISTENER_TYPE = 'envoy.config.listener.v3.Listener';
export const CLUSTER_TYPE = 'envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'envoy.config.endpoint.v3.ClusterLoadAssignment';
export const ROUTE_TYPE = 'envoy.config.route.v3.RouteConfiguration';
export const LISTENER_TYPE_URL = typeUrlOf(LISTENER_TYPE);
export const CLUSTER_TYPE_URL = typeUrlOf(CLUSTER_TYPE);
export const ENDPOINT_TYPE_URL = typeUrlOf(ENDPOINT_TYPE);
export const ROUTE_TYPE_URL = typeUrlOf(ROUTE_TYPE);

/** The order in which an atomic change is announced (make before break, as ADS servers do). */
const ANNOUNCE_ORDER = [CLUSTER_TYPE_URL, ENDPOINT_TYPE_URL, LISTENER_TYPE_URL, ROUTE_TYPE_URL, SECRET_TYPE_URL];

/** A type name ('envoy.config.cluster.v3.Cluster') or URL → its type URL. */
export function asTypeUrl(type: string): string {
  return type.includes('/') ? type : typeUrlOf(type);
}

export interface AnyBytes {
  readonly type_url: string;
  readonly value: Buffer;
}

export interface SnapshotResource {
  readonly name: string;
  /** Per-resource version (delta), bumped on every set. */
  readonly version: string;
  readonly any: AnyBytes;
}

/** Encodes a proto3 JSON message of `typeName` into an Any (no PGV check: tests send bad ones on purpose). */
export function packJson(typeName: string, json: unknown): AnyBytes {
  const r = decodeJson(typeName, json, { skipValidation: true });
  if (!r.ok) throw new Error(`packJson(${typeName}): ${formatErrors(r.errors)}`);
  return encodeAny(typeName, r.value);
}

/** An SDS Secret carrying a certificate and key (inline PEM). */
export function certificateSecret(name: string, issued: { certPem: string; keyPem: string }): Record<string, unknown> {
  return { name, tls_certificate: { certificate_chain: { inline_string: issued.certPem }, private_key: { inline_string: issued.keyPem } } };
}

/** An SDS Secret carrying a validation context (trusted CA bundle). */
export function validationSecret(name: string, ca: Issued | string): Record<string, unknown> {
  return { name, validation_context: { trusted_ca: { inline_string: typeof ca === 'string' ? ca : ca.certPem } } };
}

export class Snapshot extends EventEmitter<{ change: [typeUrl: string, names: string[]] }> {
  readonly #types = new Map<string, Map<string, SnapshotResource>>();
  readonly #versions = new Map<string, string>();
  #counter = 0;
  /** Inside update(): the types changed so far, announced when the change completes. */
  #batch: Map<string, Set<string>> | undefined;
  #batchVersion: string | undefined;

  /** Sets a resource from proto3 JSON; `version` overrides the type's SotW version_info. */
  setJson(typeName: string, name: string, json: unknown, version?: string): void {
    this.setAny(typeUrlOf(typeName), name, packJson(typeName, json), version);
  }

  /** Sets a resource from an already packed Any (may be anything, for malformed-response tests). */
  setAny(typeUrl: string, name: string, any: AnyBytes, version?: string): void {
    const v = String(++this.#counter);
    let m = this.#types.get(typeUrl);
    if (!m) this.#types.set(typeUrl, (m = new Map()));
    m.set(name, { name, version: v, any });
    this.#versions.set(typeUrl, version ?? this.#batchVersion ?? v);
    this.#changed(typeUrl, name);
  }

  /** Removes a resource (type name or URL); a no-op when absent. */
  remove(type: string, name: string, version?: string): void {
    const typeUrl = asTypeUrl(type);
    const m = this.#types.get(typeUrl);
    if (!m?.delete(name)) return;
    this.#versions.set(typeUrl, version ?? this.#batchVersion ?? String(++this.#counter));
    this.#changed(typeUrl, name);
  }

  /**
   * One atomic change: every set/remove made inside `fn` is announced together afterwards, one
   * push per type in ADS order; `version` (when given) is the SotW version_info of every type the
   * change touched.
   */
  update(fn: (s: this) => void, version?: string): void {
    if (this.#batch) {
      fn(this);
      return;
    }
    const batch = new Map<string, Set<string>>();
    this.#batch = batch;
    this.#batchVersion = version;
    try {
      fn(this);
    } finally {
      this.#batch = undefined;
      this.#batchVersion = undefined;
    }
    const rank = (t: string): number => (ANNOUNCE_ORDER.includes(t) ? ANNOUNCE_ORDER.indexOf(t) : ANNOUNCE_ORDER.length);
    for (const t of [...batch.keys()].sort((a, b) => rank(a) - rank(b))) this.emit('change', t, [...batch.get(t)!]);
  }

  /** Names of the resources of a type. */
  names(type: string): string[] {
    return [...(this.#types.get(asTypeUrl(type))?.keys() ?? [])];
  }

  #changed(typeUrl: string, name: string): void {
    if (!this.#batch) {
      this.emit('change', typeUrl, [name]);
      return;
    }
    let names = this.#batch.get(typeUrl);
    if (!names) this.#batch.set(typeUrl, (names = new Set()));
    names.add(name);
  }

  /** Resources of a type: the named ones present (in request order), or all for a wildcard. */
  resources(typeUrl: string, names: readonly string[] | undefined): SnapshotResource[] {
    const m = this.#types.get(typeUrl);
    if (!m) return [];
    if (!names || names.length === 0 || names.includes('*')) return [...m.values()];
    return names.flatMap((n) => (m.has(n) ? [m.get(n)!] : []));
  }

  get(typeUrl: string, name: string): SnapshotResource | undefined {
    return this.#types.get(typeUrl)?.get(name);
  }

  /** SotW version_info of a type ('' before any resource). */
  version(typeUrl: string): string {
    return this.#versions.get(typeUrl) ?? '';
  }
}
