// Test fixture: the test control plane's resources — per type URL, named resources already
// packed as Anys with a per-resource version, and a SotW version_info per type. Every change
// bumps a counter and notifies the control plane, which pushes to the open streams.

import { EventEmitter } from 'node:events';
import { decodeJson, encodeAny, typeUrlOf } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Issued } from '../certs.ts';

export const SECRET_TYPE = 'envoy.extensions.transport_sockets.tls.v3.Secret';
export const SECRET_TYPE_URL = typeUrlOf(SECRET_TYPE);

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
    this.#versions.set(typeUrl, version ?? v);
    this.emit('change', typeUrl, [name]);
  }

  remove(typeUrl: string, name: string, version?: string): void {
    const m = this.#types.get(typeUrl);
    if (!m?.delete(name)) return;
    this.#versions.set(typeUrl, version ?? String(++this.#counter));
    this.emit('change', typeUrl, [name]);
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
