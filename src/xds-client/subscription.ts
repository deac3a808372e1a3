// What every xDS subscription kind (SotW gRPC, delta gRPC, filesystem) shares: resource decoders,
// the update handler that validates and applies (its errors become the NACK), the handle a
// subscriber holds, and resource decoding from an Any (also unwrapping a discovery `Resource`).

import type { Any__Output } from '../generated/google/protobuf/Any.ts';
import type { Resource__Output } from '../generated/envoy/service/discovery/v3/Resource.ts';
import { decodeBinary, validateDecoded } from '../config/decode.ts';
import { OBJECT_OPTIONS } from '../config/wkt.ts';
import { lookupMessageType, typeNameOf } from '../config/protos.ts';
import { fail, joinPath, ok, type ConfigError, type Result } from '../config/result.ts';
import { type LongTimer, setLongTimeout } from '../proxy/long-timers.ts';

/** One resource out of a response, decoded and PGV-validated. */
export interface DecodedResource<T> {
  readonly name: string;
  readonly resource: T;
  /** Delta: the resource's own version. */
  readonly version?: string;
  /** PGV validation errors: the resource decoded (its name is known) but is invalid. */
  readonly invalid?: readonly ConfigError[];
}

/** Decodes one resource type (Secret, Listener, ...) from protobuf bytes. */
export interface ResourceDecoder<T> {
  readonly typeUrl: string;
  /** The resource's name (Envoy's `resourceName()`), e.g. Secret.name, Listener.name. */
  nameOf(resource: T): string;
  /** How errors name a resource (`listener` -> `listener 'http'.address...`); default `resources[i]`. */
  readonly kind?: string;
}

/**
 * Validates and applies an update. SotW: `resources` are those of the response the subscription
 * asked for (all of them when wildcard); delta: added/changed ones, plus `removed` names.
 * Returning errors rejects the whole response (NACK) and leaves the previous state in place.
 */
/** Resources of a rejected response that decoded but failed validation (for /config_dump error states). */
export type InvalidHandler<T> = (invalid: readonly DecodedResource<T>[]) => void;

export type UpdateHandler<T> = (update: { readonly resources: readonly DecodedResource<T>[]; readonly removed: readonly string[]; readonly version: string }) => readonly ConfigError[];

/**
 * How a subscription's first fetch ended (Envoy's init target becomes ready on any of these);
 * 'failure' is a file that cannot be read or parsed (gRPC connection failures keep waiting).
 */
export type InitOutcome = 'success' | 'rejected' | 'failure' | 'init_fetch_timeout';

/** A subscriber's handle. */
export interface Subscription {
  /** Resolves when the first update is accepted or rejected, or the initial fetch times out. */
  readonly initialized: Promise<InitOutcome>;
  /** The last accepted version_info ('' before any). */
  readonly version: string;
  close(): void;
}

const RESOURCE_WRAPPER = 'envoy.service.discovery.v3.Resource';

/**
 * Decodes `any` as `decoder`'s type (unwrapping a discovery `Resource` wrapper, as Envoy accepts
 * in SotW responses). `path` prefixes errors (`resources[2]`).
 */
export function decodeResource<T>(decoder: ResourceDecoder<T>, any: Any__Output, path: string): Result<DecodedResource<T>> {
  let body = any;
  let wrappedName: string | undefined;
  if (typeNameOf(any.type_url) === RESOURCE_WRAPPER) {
    const w = decodeBinary<Resource__Output>(RESOURCE_WRAPPER, any.value, path);
    if (!w.ok) return w;
    if (!w.value.resource) return fail(joinPath(path, 'resource'), 'a wrapped Resource must carry a resource');
    body = w.value.resource;
    wrappedName = w.value.name || undefined;
  }
  if (typeNameOf(body.type_url) !== typeNameOf(decoder.typeUrl)) {
    return fail(joinPath(path, 'type_url'), `type URL ${body.type_url} does not match the subscription's ${decoder.typeUrl}`);
  }
  const typeName = typeNameOf(decoder.typeUrl);
  const type = lookupMessageType(typeName);
  if (!type) return fail(path, `unknown message type "${typeName}"`);
  let value: T;
  try {
    value = type.toObject(type.decode(body.value), OBJECT_OPTIONS) as T;
  } catch (e) {
    return fail(path, `invalid ${typeName} bytes: ${(e as Error).message}`);
  }
  const name = wrappedName ?? decoder.nameOf(value);
  const invalid = validateDecoded(typeName, value, decoder.kind && name ? `${decoder.kind} '${name}'` : path);
  return ok(invalid.length > 0 ? { name, resource: value, invalid } : { name, resource: value });
}

/**
 * Sorts one decoded resource: valid ones into `decoded`; invalid ones (decoded, PGV errors) into
 * `invalid` with their errors in `errors`; undecodable ones' errors into `errors`.
 */
export function sortDecoded<T>(r: Result<DecodedResource<T>>, decoded: DecodedResource<T>[], invalid: DecodedResource<T>[], errors: ConfigError[]): void {
  if (!r.ok) errors.push(...r.errors);
  else if (r.value.invalid) {
    errors.push(...r.value.invalid);
    invalid.push(r.value);
  } else decoded.push(r.value);
}

/** One line per error, as Envoy's NACK error_detail.message reads. */
export function nackMessage(errors: readonly ConfigError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.reason}` : e.reason)).join('\n');
}

/**
 * A subscription's initial fetch (Envoy's init target): `promise` resolves with the first outcome
 * (accepted, rejected, or `onTimeout` after `timeoutMs`; 0 = no timeout). Shared by the streams.
 */
export class InitialFetch {
  readonly promise: Promise<InitOutcome>;
  #resolve!: (o: InitOutcome) => void;
  #done = false;
  #timer: LongTimer | undefined;

  constructor(timeoutMs: number, onTimeout: () => void) {
    this.promise = new Promise((r) => (this.#resolve = r));
    if (timeoutMs > 0) {
      this.#timer = setLongTimeout(() => {
        onTimeout();
        this.done('init_fetch_timeout');
      }, timeoutMs);
      this.#timer.unref();
    }
  }

  done(o: InitOutcome): void {
    this.cancel();
    if (this.#done) return;
    this.#done = true;
    this.#resolve(o);
  }

  /** Stops the timer (closing the subscription); the promise stays pending if not done. */
  cancel(): void {
    this.#timer?.clear();
  }
}

/** Envoy's default initial_fetch_timeout: 15s; `0s` waits forever (returns 0). */
export function initialFetchTimeoutMs(d: { seconds: string | number; nanos: number } | null | undefined): number {
  if (!d) return 15 * 1000;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}
