// `legate wasm test`: runs request/response cases through a plugin with no network. Each case gets
// a fresh VM, its root context configured from the file's `plugin` section, one stream driven
// through request headers/body/trailers and (unless the plugin answered or paused) the response,
// then checked against `expect`: headers and bodies as the upstream / client would see them, a
// local reply, logs, metrics, HTTP calls made (answered from `http_calls`), a trap.

import { MetricType, Status } from '../abi.ts';
import type { Pairs } from '../pairs.ts';
import { WasmVm } from '../vm.ts';
import { WasmTrap, type HttpCallResponse, type VmServices } from '../vm-api.ts';
import { SharedWasmStore } from '../shared-store.ts';
import { rootContextApi } from '../properties.ts';
import { MemoryStream, type MemoryHeaders } from './memory-stream.ts';

type Obj = Record<string, unknown>;

export interface CaseResult {
  readonly name: string;
  readonly failures: readonly string[];
}

export interface CasesFile {
  readonly plugin: { readonly rootId: string; readonly configuration: Buffer; readonly vmConfiguration: Buffer; readonly environment: Pairs; readonly name: string; readonly vmId: string };
  readonly cases: readonly Obj[];
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): Buffer => (v === undefined || v === null ? Buffer.alloc(0) : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8'));
const pairs = (v: unknown): Pairs => (isObj(v) ? Object.entries(v).map(([k, x]) => [k, String(x)] as const) : []);

/** Checks the shape of a parsed cases file; errors name the field path. */
export function parseCasesFile(doc: unknown): { ok: true; value: CasesFile } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (!isObj(doc)) return { ok: false, errors: ['(root): a mapping with `plugin` and `cases` is required'] };
  const p = isObj(doc.plugin) ? doc.plugin : {};
  if (doc.plugin !== undefined && !isObj(doc.plugin)) errors.push('plugin: must be a mapping');
  if (!Array.isArray(doc.cases) || doc.cases.length === 0) errors.push('cases: a non-empty list is required');
  const cases = Array.isArray(doc.cases) ? doc.cases : [];
  cases.forEach((c, i) => {
    if (!isObj(c)) return void errors.push(`cases[${i}]: must be a mapping`);
    if (typeof c.name !== 'string') errors.push(`cases[${i}].name: a string is required`);
    if (isObj(c.connection)) {
      for (const side of ['downstream', 'upstream'] as const) {
        const v = c.connection[side];
        if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) errors.push(`cases[${i}].connection.${side}: a list of strings is required`);
      }
    } else if (!isObj(c.request) || !isObj(c.request.headers)) errors.push(`cases[${i}].request.headers: a mapping is required (or connection: for a network filter)`);
    if (c.expect !== undefined && !isObj(c.expect)) errors.push(`cases[${i}].expect: must be a mapping`);
  });
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      plugin: {
        name: typeof p.name === 'string' ? p.name : 'plugin',
        rootId: typeof p.root_id === 'string' ? p.root_id : '',
        vmId: typeof p.vm_id === 'string' ? p.vm_id : '',
        configuration: text(p.configuration),
        vmConfiguration: text(p.vm_configuration),
        environment: pairs(p.environment),
      },
      cases: cases as Obj[],
    },
  };
}


const settle = async (done: () => boolean): Promise<void> => {
  for (let i = 0; i < 50 && !done(); i++) await new Promise((r) => setImmediate(r));
};

function checkHeaders(what: string, want: unknown, got: MemoryHeaders, out: string[]): void {
  if (!isObj(want)) return;
  for (const [k, v] of Object.entries(want)) {
    const actual = got.get(k.toLowerCase());
    if (v === null) {
      if (actual !== undefined) out.push(`${what} ${k}: expected absent, got '${actual}'`);
    } else if (actual !== String(v)) out.push(`${what} ${k}: expected '${String(v)}', got ${actual === undefined ? 'none' : `'${actual}'`}`);
  }
}

/** A network-filter case: new connection, each side's chunks in turn (the last with end of stream), both closes. */
function runConnection(vm: WasmVm, id: number, stream: MemoryStream, conn: Obj): void {
  vm.call(id, 'proxy_on_new_connection', id);
  for (const side of ['downstream', 'upstream'] as const) {
    const chunks = Array.isArray(conn[side]) ? (conn[side] as string[]) : [];
    const body = side === 'downstream' ? stream.downstreamData : stream.upstreamData;
    chunks.forEach((chunk, i) => {
      body.data = Buffer.concat([body.data, Buffer.from(chunk)]);
      const last = i === chunks.length - 1;
      const r = vm.call(id, side === 'downstream' ? 'proxy_on_downstream_data' : 'proxy_on_upstream_data', id, body.data.length, last ? 1 : 0) ?? 0;
      if (r === 0 || last) {
        stream.forwarded[side] += body.data.toString();
        body.data = Buffer.alloc(0);
      }
    });
  }
  vm.call(id, 'proxy_on_downstream_connection_close', id, 2);
  vm.call(id, 'proxy_on_upstream_connection_close', id, 1);
}

export async function runCase(module: WebAssembly.Module, file: CasesFile, c: Obj): Promise<CaseResult> {
  const name = String(c.name);
  const logs: string[] = [];
  const metrics = new Map<number, { name: string; type: number; value: bigint }>();
  const canned = Array.isArray(c.http_calls) ? [...(c.http_calls as unknown[])] : [];
  const calls: Array<{ cluster: string; headers: Pairs }> = [];
  const expect = isObj(c.expect) ? c.expect : {};
  const services: VmServices = {
    log: (_l, m) => void logs.push(m),
    logLevel: () => 0,
    environment: () => file.plugin.environment,
    defineMetric: (type, n) => {
      for (const [id, m] of metrics) if (m.name === n && m.type === type) return id;
      metrics.set(metrics.size + 1, { name: n, type, value: 0n });
      return metrics.size;
    },
    recordMetric: (id, v) => (metrics.get(id) ? ((metrics.get(id)!.value = v), Status.OK) : Status.NOT_FOUND),
    incrementMetric: (id, d) => {
      const m = metrics.get(id);
      if (!m) return Status.NOT_FOUND;
      if (m.type === MetricType.COUNTER && d < 0n) return Status.BAD_ARGUMENT;
      m.value += d;
      return Status.OK;
    },
    getMetric: (id) => metrics.get(id)?.value,
    ...(() => {
      const store = new SharedWasmStore(SharedWasmStore.create(1024 * 1024), 0);
      return {
        getSharedData: (k: string) => store.getSharedData(file.plugin.vmId, k),
        setSharedData: (k: string, v: Buffer, cas: number) => store.setSharedData(file.plugin.vmId, k, v, cas),
        registerQueue: (n: string, notify: (id: number) => void) => store.registerQueue(file.plugin.vmId, n, notify),
        resolveQueue: (vm: string, n: string) => store.resolveQueue(vm, n),
        enqueue: (id: number, v: Buffer) => store.enqueue(id, v),
        dequeue: (id: number) => store.dequeue(id),
      };
    })(),
    httpCall: (req) => {
      calls.push({ cluster: req.cluster, headers: req.headers });
      const r = canned.shift();
      const resp: HttpCallResponse = isObj(r)
        ? { status: Number(r.status ?? 200), headers: [[':status', String(r.status ?? 200)], ...pairs(r.headers)], body: text(r.body), trailers: [], message: '' }
        : { status: 0, headers: [], body: Buffer.alloc(0), trailers: [], message: 'no canned response' };
      return { status: Status.OK, response: Promise.resolve(resp) };
    },
    callForeignFunction: () => ({ status: Status.NOT_FOUND }),
    grpc: () => ({ status: Status.UNIMPLEMENTED }),
  };
  const req = isObj(c.request) ? c.request : {};
  const resp = isObj(c.response) ? c.response : {};
  const stream = new MemoryStream({
    requestHeaders: pairs(req.headers),
    ...(req.body !== undefined ? { requestBody: text(req.body) } : {}),
    requestTrailers: pairs(req.trailers),
    responseHeaders: isObj(resp.headers) ? pairs(resp.headers) : [[':status', '200']],
    ...(resp.body !== undefined ? { responseBody: text(resp.body) } : {}),
    responseTrailers: pairs(resp.trailers),
  });
  let trap: string | undefined;
  let upstreamCalled = false;
  try {
    const vm = new WasmVm(module, services);
    const root = rootContextApi(file.plugin);
    const rootId = vm.createRootContext(root, file.plugin.vmConfiguration, file.plugin.configuration);
    const id = vm.createStreamContext(rootId, stream.api(root));
    let failed: unknown;
    vm.onAsyncTrap((_c, e) => (failed = e));
    if (isObj(c.connection)) runConnection(vm, id, stream, c.connection);
    else await runHttp(vm, id, stream, req, resp, () => failed, () => (upstreamCalled = true));
    vm.finish(id);
  } catch (e) {
    trap = e instanceof WasmTrap ? e.message : e instanceof Error ? e.message : String(e);
  }
  return check(name, expect, stream, { trap, upstreamCalled, logs, metrics, calls });
}

/** An HTTP case: request headers, body, trailers; then (unless answered or held) the response. */
async function runHttp(vm: WasmVm, id: number, stream: MemoryStream, req: Obj, resp: Obj, failed: () => unknown, onUpstream: () => void): Promise<void> {
  const side = async (hdr: string, body: string, trl: string, headers: MemoryHeaders, b: { bytes(): Buffer }, trailers: MemoryHeaders, hasBody: boolean, continued: () => boolean): Promise<boolean> => {
    const hasTrailers = trailers.list.length > 0;
    if ((vm.call(id, hdr, id, headers.list.length, !hasBody && !hasTrailers ? 1 : 0) ?? 0) !== 0) {
      await settle(() => continued() || stream.localReply !== undefined || failed() !== undefined);
      if (failed()) throw failed();
      if (!continued() || stream.localReply) return false;
    }
    if (stream.localReply) return false;
    if (hasBody) {
      const r = vm.call(id, body, id, b.bytes().length, hasTrailers ? 0 : 1) ?? 0;
      if (stream.localReply || r !== 0) return false;
    }
    if (hasTrailers && ((vm.call(id, trl, id, trailers.list.length) ?? 0) !== 0 || stream.localReply)) return false;
    return true;
  };
  const requestOn = await side('proxy_on_request_headers', 'proxy_on_request_body', 'proxy_on_request_trailers', stream.requestHeaders, stream.requestBody, stream.requestTrailers, req.body !== undefined, () => stream.requestContinued);
  if (requestOn) {
    onUpstream();
    await side('proxy_on_response_headers', 'proxy_on_response_body', 'proxy_on_response_trailers', stream.responseHeaders, stream.responseBody, stream.responseTrailers, resp.body !== undefined, () => stream.responseContinued);
  }
}

interface Observed {
  readonly trap: string | undefined;
  readonly upstreamCalled: boolean;
  readonly logs: readonly string[];
  readonly metrics: ReadonlyMap<number, { name: string; type: number; value: bigint }>;
  readonly calls: ReadonlyArray<{ cluster: string; headers: Pairs }>;
}

/** Compares what happened with the case's `expect`. */
function check(name: string, expect: Obj, stream: MemoryStream, o: Observed): CaseResult {
  const failures: string[] = [];
  const { trap, upstreamCalled, logs, metrics, calls } = o;
  if (expect.downstream_forwarded !== undefined && stream.forwarded.downstream !== String(expect.downstream_forwarded)) failures.push(`downstream bytes forwarded: expected '${String(expect.downstream_forwarded)}', got '${stream.forwarded.downstream}'`);
  if (expect.upstream_forwarded !== undefined && stream.forwarded.upstream !== String(expect.upstream_forwarded)) failures.push(`upstream bytes forwarded: expected '${String(expect.upstream_forwarded)}', got '${stream.forwarded.upstream}'`);
  if (expect.trap !== undefined) {
    if (!trap) failures.push('expected a trap, the plugin ran to the end');
    else if (typeof expect.trap === 'string' && !trap.includes(expect.trap)) failures.push(`trap '${trap}' does not contain '${expect.trap}'`);
  } else if (trap) failures.push(`the plugin failed: ${trap}`);
  checkHeaders('request header', expect.request_headers, stream.requestHeaders, failures);
  checkHeaders('response header', expect.response_headers, stream.responseHeaders, failures);
  if (expect.request_body !== undefined && stream.requestBody.bytes().toString() !== String(expect.request_body)) failures.push(`request body: expected '${String(expect.request_body)}', got '${stream.requestBody.bytes().toString()}'`);
  if (expect.response_body !== undefined && stream.responseBody.bytes().toString() !== String(expect.response_body)) failures.push(`response body: expected '${String(expect.response_body)}', got '${stream.responseBody.bytes().toString()}'`);
  if (expect.upstream_called !== undefined && upstreamCalled !== expect.upstream_called) failures.push(`upstream_called: expected ${String(expect.upstream_called)}, got ${upstreamCalled}`);
  const lr = expect.local_reply;
  if (lr === null || lr === false) {
    if (stream.localReply) failures.push(`expected no local reply, got ${stream.localReply.status}`);
  } else if (isObj(lr)) {
    const got = stream.localReply;
    if (!got) failures.push('expected a local reply, there was none');
    else {
      if (lr.status !== undefined && got.status !== Number(lr.status)) failures.push(`local reply status: expected ${String(lr.status)}, got ${got.status}`);
      if (lr.body !== undefined && got.body.toString() !== String(lr.body)) failures.push(`local reply body: expected '${String(lr.body)}', got '${got.body.toString()}'`);
      if (lr.details !== undefined && got.details !== String(lr.details)) failures.push(`local reply details: expected '${String(lr.details)}', got '${got.details}'`);
      if (isObj(lr.headers)) for (const [k, v] of Object.entries(lr.headers)) if (!got.headers.some(([n, x]) => n.toLowerCase() === k.toLowerCase() && x === String(v))) failures.push(`local reply header ${k}: expected '${String(v)}'`);
    }
  }
  if (Array.isArray(expect.logs)) for (const l of expect.logs) if (!logs.some((x) => x.includes(String(l)))) failures.push(`no log line contains '${String(l)}'`);
  if (isObj(expect.metrics)) {
    for (const [k, v] of Object.entries(expect.metrics)) {
      const m = [...metrics.values()].find((x) => x.name === k);
      if (!m) failures.push(`metric ${k}: not defined`);
      else if (m.value !== BigInt(Number(v))) failures.push(`metric ${k}: expected ${String(v)}, got ${m.value}`);
    }
  }
  if (Array.isArray(expect.http_calls)) {
    if (calls.length !== expect.http_calls.length) failures.push(`http calls: expected ${expect.http_calls.length}, got ${calls.length}`);
    expect.http_calls.forEach((want, i) => {
      const got = calls[i];
      if (!got || !isObj(want)) return;
      if (want.cluster !== undefined && got.cluster !== want.cluster) failures.push(`http call ${i} cluster: expected '${String(want.cluster)}', got '${got.cluster}'`);
      if (isObj(want.headers)) for (const [k, v] of Object.entries(want.headers)) if (!got.headers.some(([n, x]) => n === k && x === String(v))) failures.push(`http call ${i} header ${k}: expected '${String(v)}'`);
    });
  }
  return { name, failures };
}
