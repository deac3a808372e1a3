// Test fixture: an in-process xDS management server on @grpc/grpc-js with Envoy's discovery
// services (ADS SotW/delta, and the per-type LDS, CDS, EDS, RDS, SDS Stream*/Delta* services)
// over a programmable Snapshot. It listens on 127.0.0.1 (port 0) or a Unix socket, can be stopped
// and restarted on the same address, pushes changes to open streams, and records every request
// it receives and every response it sends so tests can await ACKs and NACKs and assert nonces,
// error_detail, node identity, subscriptions and initial_resource_versions.

import * as grpc from '@grpc/grpc-js';
import { rmSync } from 'node:fs';
import {
  DELTA_REQUEST,
  DELTA_RESPONSE,
  DISCOVERY_REQUEST,
  DISCOVERY_RESPONSE,
  METHODS,
  type DeltaDiscoveryRequest__Output,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest__Output,
  type DiscoveryResponse,
} from '../../../src/xds-client/codec.ts';
import { Snapshot, SECRET_TYPE, SECRET_TYPE_URL, asTypeUrl, type AnyBytes } from './snapshot.ts';

export {
  Snapshot,
  certificateSecret,
  validationSecret,
  packJson,
  asTypeUrl,
  SECRET_TYPE,
  SECRET_TYPE_URL,
  LISTENER_TYPE,
  LISTENER_TYPE_URL,
  CLUSTER_TYPE,
  CLUSTER_TYPE_URL,
  ENDPOINT_TYPE,
  ENDPOINT_TYPE_URL,
  ROUTE_TYPE,
  ROUTE_TYPE_URL,
} from './snapshot.ts';

/** A request as received; `at` is performance.now() on arrival. */
export type RecordedRequest =
  | { readonly stream: number; readonly method: string; readonly at: number; readonly delta: false; readonly request: DiscoveryRequest__Output }
  | { readonly stream: number; readonly method: string; readonly at: number; readonly delta: true; readonly request: DeltaDiscoveryRequest__Output };

export interface SentResponse {
  readonly stream: number;
  readonly typeUrl: string;
  readonly nonce: string;
  /** version_info (SotW) or system_version_info (delta). */
  readonly version: string;
  /** Resources carried (SotW: all of the type; delta: the changed ones). */
  readonly names: readonly string[];
  /** Delta only: removed_resources. */
  readonly removed: readonly string[];
  /** Milliseconds (performance.now()) when the response was written. */
  readonly at: number;
}

/** gRPC service and method names served, per discovery service. */
const SERVICES: ReadonlyArray<readonly [service: keyof typeof METHODS, delta: keyof typeof METHODS, sotwName: string, deltaName: string]> = [
  ['streamSecrets', 'deltaSecrets', 'StreamSecrets', 'DeltaSecrets'],
  ['streamAggregated', 'deltaAggregated', 'StreamAggregatedResources', 'DeltaAggregatedResources'],
  ['streamListeners', 'deltaListeners', 'StreamListeners', 'DeltaListeners'],
  ['streamClusters', 'deltaClusters', 'StreamClusters', 'DeltaClusters'],
  ['streamEndpoints', 'deltaEndpoints', 'StreamEndpoints', 'DeltaEndpoints'],
  ['streamRoutes', 'deltaRoutes', 'StreamRoutes', 'DeltaRoutes'],
];

export interface ControlPlaneOptions {
  /** Listen on this Unix socket path instead of 127.0.0.1:0. */
  readonly socketPath?: string;
}

type Duplex<Req, Res> = grpc.ServerDuplexStream<Req, Res>;

interface SotwState {
  names: string[];
  /** name → resource version last sent on this stream. */
  sent: Map<string, string>;
}

interface StreamHandle {
  readonly id: number;
  push(typeUrl: string): void;
  /** SotW streams only: writes a hand-made response for `typeUrl` if the stream asked for that type. */
  raw?(typeUrl: string, resources: readonly AnyBytes[], version: string): void;
  end(): void;
}

export class ControlPlane {
  readonly snapshot = new Snapshot();
  readonly requests: RecordedRequest[] = [];
  readonly responses: SentResponse[] = [];
  readonly #opts: ControlPlaneOptions;
  readonly #streams = new Set<StreamHandle>();
  #server: grpc.Server | undefined;
  #port = 0;
  #nextStream = 1;
  #nonce = 0;
  #waiters: Array<() => void> = [];

  private constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.snapshot.on('change', (typeUrl) => {
      for (const s of this.#streams) s.push(typeUrl);
    });
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    await cp.listen();
    return cp;
  }

  /** 127.0.0.1 port (0 when on a Unix socket). */
  get port(): number {
    return this.#port;
  }

  /** A grpc-js target for clients in this process. */
  get target(): string {
    return this.#opts.socketPath ? `unix:${this.#opts.socketPath}` : `127.0.0.1:${this.#port}`;
  }

  /** Number of streams open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  setSecret(name: string, secretJson: Record<string, unknown>, version?: string): void {
    this.snapshot.setJson(SECRET_TYPE, name, { ...secretJson, name: secretJson['name'] ?? name }, version);
  }

  /** Sets a raw Any as the secret `name` (malformed-resource tests). */
  setRawSecret(name: string, any: AnyBytes, version?: string): void {
    this.snapshot.setAny(SECRET_TYPE_URL, name, any, version);
  }

  /**
   * Sends a hand-made SotW response (not from the snapshot) on every stream watching `typeUrl`:
   * e.g. extra resources nobody asked for, or bytes that do not decode.
   */
  pushRaw(typeUrl: string, resources: readonly AnyBytes[], version: string): void {
    for (const s of this.#streams) s.raw?.(typeUrl, resources, version);
  }

  removeSecret(name: string, version?: string): void {
    this.snapshot.remove(SECRET_TYPE_URL, name, version);
  }

  /** Sets one resource (type name, e.g. LISTENER_TYPE) from proto3 JSON. */
  set(typeName: string, name: string, json: unknown, version?: string): void {
    this.snapshot.setJson(typeName, name, json, version);
  }

  /** Removes one resource (type name or URL). */
  remove(type: string, name: string, version?: string): void {
    this.snapshot.remove(type, name, version);
  }

  /** One atomic change of any number of resources of any types (see Snapshot.update). */
  update(fn: (s: Snapshot) => void, version?: string): void {
    this.snapshot.update(fn, version);
  }

  /** (Re)starts serving on the same address (after stop()). */
  async listen(): Promise<void> {
    const server = new grpc.Server();
    const sotw = (method: string) => (call: Duplex<DiscoveryRequest__Output, DiscoveryResponse>) => this.#serveSotw(method, call);
    const delta = (method: string) => (call: Duplex<DeltaDiscoveryRequest__Output, DeltaDiscoveryResponse>) => this.#serveDelta(method, call);
    const sotwDef = (path: string) => ({ path, requestStream: true, responseStream: true, requestSerialize: DISCOVERY_REQUEST.serialize, requestDeserialize: DISCOVERY_REQUEST.deserialize, responseSerialize: DISCOVERY_RESPONSE.serialize, responseDeserialize: DISCOVERY_RESPONSE.deserialize });
    const deltaDef = (path: string) => ({ path, requestStream: true, responseStream: true, requestSerialize: DELTA_REQUEST.serialize, requestDeserialize: DELTA_REQUEST.deserialize, responseSerialize: DELTA_RESPONSE.serialize, responseDeserialize: DELTA_RESPONSE.deserialize });
    for (const [s, d, sName, dName] of SERVICES) {
      server.addService(
        { [sName]: sotwDef(METHODS[s].path), [dName]: deltaDef(METHODS[d].path) } as grpc.ServiceDefinition,
        { [sName]: sotw(sName), [dName]: delta(dName) } as grpc.UntypedServiceImplementation,
      );
    }
    if (this.#opts.socketPath) rmSync(this.#opts.socketPath, { force: true });
    const addr = this.#opts.socketPath ? `unix:${this.#opts.socketPath}` : `127.0.0.1:${this.#port}`;
    this.#port = await new Promise<number>((resolve, reject) => server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    this.#server = server;
  }

  /** Stops serving: open streams end (clients see UNAVAILABLE/CANCELLED and reconnect later). */
  stop(): void {
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    this.#server?.forceShutdown();
    this.#server = undefined;
  }

  /** Stops and serves again on the same address (what a control plane restart looks like). */
  async restart(): Promise<void> {
    this.stop();
    await this.listen();
  }

  /** Requests received so far for a type (type name or URL; SotW and delta). */
  requestsFor(type: string): RecordedRequest[] {
    const typeUrl = asTypeUrl(type);
    return this.requests.filter((r) => r.request.type_url === typeUrl);
  }

  /** Ids of the streams that sent at least one request, in order of their first request. */
  streamIds(): number[] {
    return [...new Set(this.requests.map((r) => r.stream))];
  }

  /**
   * Waits for the ACK of `version` of a type: a request echoing the nonce of a response that
   * carried that version, without error_detail (SotW: whose version_info is that version).
   * Resolves with the ACK.
   */
  ack(type: string, version: string, timeoutMs?: number): Promise<RecordedRequest> {
    const typeUrl = asTypeUrl(type);
    return this.waitFor(
      () => {
        const nonces = new Set(this.responses.filter((r) => r.typeUrl === typeUrl && r.version === version).map((r) => r.nonce));
        return this.requests.find((r) => r.request.type_url === typeUrl && nonces.has(r.request.response_nonce) && !r.request.error_detail && (r.delta || r.request.version_info === version));
      },
      `the ACK of ${typeUrl} version ${version}`,
      timeoutMs,
    );
  }

  /** Waits for a NACK (a request with error_detail) of a type received at index >= `since` of `requests`. */
  nack(type: string, since = 0, timeoutMs?: number): Promise<RecordedRequest> {
    const typeUrl = asTypeUrl(type);
    return this.waitFor(() => this.requests.slice(since).find((r) => r.request.type_url === typeUrl && r.request.error_detail), `a NACK of ${typeUrl}`, timeoutMs);
  }

  /** Waits for the first request of a type on a stream opened after `afterStream` (a reconnect). */
  nextStreamRequest(type: string, afterStream: number, timeoutMs?: number): Promise<RecordedRequest> {
    const typeUrl = asTypeUrl(type);
    return this.waitFor(() => this.requests.find((r) => r.stream > afterStream && r.request.type_url === typeUrl), `a request for ${typeUrl} on a stream after #${afterStream}`, timeoutMs);
  }

  /** Waits until `pred` holds (re-checked on every request received), or fails after timeoutMs. */
  async waitFor<T>(pred: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`control plane: timed out waiting for ${what}; requests: ${JSON.stringify(this.requests.map(summary), null, 1)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  #record(r: RecordedRequest): void {
    this.requests.push(r);
    for (const w of this.#waiters.splice(0)) w();
  }

  #serveSotw(method: string, call: Duplex<DiscoveryRequest__Output, DiscoveryResponse>): void {
    const id = this.#nextStream++;
    const types = new Map<string, SotwState>();
    const send = (typeUrl: string, st: SotwState, force: boolean): void => {
      const res = this.snapshot.resources(typeUrl, st.names);
      const changed = res.some((r) => st.sent.get(r.name) !== r.version) || [...st.sent.keys()].some((n) => !res.find((r) => r.name === n));
      if (res.length === 0 && st.sent.size === 0) return;
      if (!changed && !force) return;
      st.sent = new Map(res.map((r) => [r.name, r.version]));
      const nonce = String(++this.#nonce);
      const version = this.snapshot.version(typeUrl);
      this.responses.push({ stream: id, typeUrl, nonce, version, names: res.map((r) => r.name), removed: [], at: performance.now() });
      call.write({ version_info: version, type_url: typeUrl, nonce, resources: res.map((r) => r.any) });
    };
    const handle: StreamHandle = {
      id,
      push: (typeUrl) => {
        const st = types.get(typeUrl);
        if (st) send(typeUrl, st, false);
      },
      raw: (typeUrl, resources, version) => {
        if (!types.has(typeUrl)) return;
        const nonce = String(++this.#nonce);
        this.responses.push({ stream: id, typeUrl, nonce, version, names: [], removed: [], at: performance.now() });
        call.write({ version_info: version, type_url: typeUrl, nonce, resources: [...resources] });
      },
      end: () => call.destroy(),
    };
    this.#streams.add(handle);
    call.on('data', (req: DiscoveryRequest__Output) => {
      this.#record({ stream: id, method, at: performance.now(), delta: false, request: req });
      let st = types.get(req.type_url);
      const namesChanged = !st || st.names.join('\0') !== req.resource_names.join('\0');
      if (!st) types.set(req.type_url, (st = { names: [], sent: new Map() }));
      st.names = [...req.resource_names];
      // A new stream (empty nonce) or new interest gets the current state; ACKs/NACKs get nothing new.
      if (req.response_nonce === '' || namesChanged) send(req.type_url, st, req.response_nonce === '');
    });
    const done = (): void => void this.#streams.delete(handle);
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
  }

  #serveDelta(method: string, call: Duplex<DeltaDiscoveryRequest__Output, DeltaDiscoveryResponse>): void {
    const id = this.#nextStream++;
    const types = new Map<string, { names: Set<string> | undefined; sent: Map<string, string> }>();
    const send = (typeUrl: string): void => {
      const st = types.get(typeUrl);
      if (!st) return;
      const res = this.snapshot.resources(typeUrl, st.names ? [...st.names] : undefined);
      const changed = res.filter((r) => st.sent.get(r.name) !== r.version);
      const removed = [...st.sent.keys()].filter((n) => !res.find((r) => r.name === n));
      if (changed.length === 0 && removed.length === 0) return;
      for (const r of changed) st.sent.set(r.name, r.version);
      for (const n of removed) st.sent.delete(n);
      const nonce = String(++this.#nonce);
      const version = this.snapshot.version(typeUrl);
      this.responses.push({ stream: id, typeUrl, nonce, version, names: changed.map((r) => r.name), removed, at: performance.now() });
      call.write({ system_version_info: version, type_url: typeUrl, nonce, resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any })), removed_resources: removed });
    };
    const handle: StreamHandle = { id, push: send, end: () => call.destroy() };
    this.#streams.add(handle);
    call.on('data', (req: DeltaDiscoveryRequest__Output) => {
      this.#record({ stream: id, method, at: performance.now(), delta: true, request: req });
      let st = types.get(req.type_url);
      if (!st) {
        const wildcard = req.resource_names_subscribe.length === 0 || req.resource_names_subscribe.includes('*');
        types.set(req.type_url, (st = { names: wildcard ? undefined : new Set(), sent: new Map(Object.entries(req.initial_resource_versions)) }));
      }
      for (const n of req.resource_names_subscribe) if (n !== '*') st.names?.add(n);
      for (const n of req.resource_names_unsubscribe) {
        st.names?.delete(n);
        st.sent.delete(n);
      }
      if (req.response_nonce === '' || req.resource_names_subscribe.length > 0) send(req.type_url);
    });
    const done = (): void => void this.#streams.delete(handle);
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
  }

  async close(): Promise<void> {
    this.stop();
    if (this.#opts.socketPath) rmSync(this.#opts.socketPath, { force: true });
  }
}

function summary(r: RecordedRequest): unknown {
  const q = r.request;
  return r.delta
    ? { stream: r.stream, type: q.type_url, subscribe: (q as DeltaDiscoveryRequest__Output).resource_names_subscribe, nonce: q.response_nonce, error: q.error_detail?.message }
    : { stream: r.stream, type: q.type_url, names: (q as DiscoveryRequest__Output).resource_names, version: (q as DiscoveryRequest__Output).version_info, nonce: q.response_nonce, error: q.error_detail?.message, node: q.node?.id };
}
