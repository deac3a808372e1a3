// legate as the suite runs it: `legate` (--concurrency 1) and `legate-c2` (--concurrency 2) with the
// core listeners (plain, tcp_proxy, TLS, mTLS upstream, mTLS both ways), and `legate-ext`
// (--concurrency 1, its own process so the Wasm VM and filters do not weigh on legate's figures)
// with a plain listener beside the filters and Proxy-Wasm listeners, for in-process ratios.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { examplePlugin } from '../../test/helpers/wasm.ts';
import { freePorts, spawnPinned, stopChild } from '../lib/procs.ts';
import { here, ready, running } from './common.ts';
import { coreBootstrap, extBootstrap, FILTERS_RESPONSE_HEADER, ISTIO_NODE_ID, ISTIO_PEER_HEADERS } from './legate-config.ts';
import type { Contestant, Listener, Running, StartContext } from './types.ts';

// The launcher users run (npm start, the `legate` bin): with the compile cache `npm install` primed,
// no thread loads Node's TypeScript stripper (27-30 MB of RSS each when started as `node src/cli.ts`).
const LEGATE_CLI = here('../../bin/legate.js');
const version = (): string => `legate ${(JSON.parse(readFileSync(here('../../package.json'), 'utf8')) as { version: string }).version}`;

function spawnLegate(ctx: StartContext, name: string, config: Record<string, unknown>, concurrency: number): ReturnType<typeof spawnPinned> {
  const file = join(ctx.dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  return spawnPinned(ctx.cpu, process.execPath, [LEGATE_CLI, '-c', file, '--concurrency', String(concurrency), '-l', 'warning', '--drain-time-s', '1']);
}

export function legate(concurrency: number): Contestant {
  const name = concurrency === 1 ? 'legate' : `legate-c${concurrency}`;
  return {
    name,
    describe: `legate --concurrency ${concurrency} (HCM codec AUTO, route table, router, stats on, no access log; listeners: plain, tcp_proxy, TLS termination, plain → mTLS upstream, mTLS both ways)`,
    async start(ctx) {
      const [h1, tcp, tls, mtlsUp, mtls] = await freePorts(5) as [number, number, number, number, number];
      const child = spawnLegate(ctx, name, coreBootstrap(ctx.upstream, ctx.pki, { h1, tcp, tls, mtlsUp, mtls }), concurrency);
      await ready(child, [h1, tcp, tls, mtlsUp, mtls]);
      return running(child, { h1, h2: h1, tcp, tls, mtlsUp, mtls }, {}, version());
    },
  };
}

/** The response header a listener must add, checked with one request before measuring. */
async function checkHeader(port: number, header: string, want: string, send: Readonly<Record<string, string>> = {}): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/12`, { headers: send });
    await r.arrayBuffer();
    const got = r.headers.get(header);
    return r.status === 200 && got === want ? undefined : `port ${port}: status ${r.status}, ${header}: ${got ?? 'absent'} (want ${want})`;
  } catch (e) {
    return `port ${port}: ${(e as Error).message}`;
  }
}

export const legateExt: Contestant = {
  name: 'legate-ext',
  listedOnly: true,
  describe: 'legate --concurrency 1, own process: plain listener (row "legate-ext plain") beside fault 0% + local_ratelimit (never limits) + header_mutation before the router (filters-12b) and the Proxy-Wasm header-filter example plugin (wasm-12b) and Istio\'s inbound telemetry filters (istio-12b)',
  async start(ctx) {
    const [h1, filters, wasmPort, istio] = await freePorts(4) as [number, number, number, number];
    const missing: Partial<Record<Listener, string>> = {};
    let wasmPlugin: string | undefined;
    try {
      wasmPlugin = examplePlugin('header-filter');
    } catch (e) {
      missing.wasm = `header-filter plugin could not be built: ${(e as Error).message.split('\n')[0]}`;
    }
    const ports = { h1, filters, istio, ...(wasmPlugin ? { wasm: wasmPort } : {}) };
    const notes: string[] = [];
    const start = async (headerMutationFilter: boolean): Promise<ReturnType<typeof spawnPinned>> => {
      const child = spawnLegate(ctx, `legate-ext-${headerMutationFilter ? 'hm' : 'route'}`, extBootstrap(ctx.upstream, ctx.pki, ports, { ...(wasmPlugin ? { wasmPlugin } : {}), headerMutationFilter }), 1);
      await ready(child, Object.values(ports));
      return child;
    };
    let child: ReturnType<typeof spawnPinned>;
    try {
      child = await start(true);
    } catch (e) {
      const why = (e as Error).message;
      if (!/header_mutation|HeaderMutation/.test(why)) throw e;
      const reason = /[^\s:]*http_filters\[\d+\]: [^(|]*/.exec(why)?.[0].trim() ?? why.slice(0, 200);
      notes.push(`legate rejected envoy.filters.http.header_mutation (${reason}); filters-12b adds the same headers with the route's request/response_headers_to_add instead`);
      child = await start(false);
    }
    const problems = [
      await checkHeader(filters, FILTERS_RESPONSE_HEADER.key, FILTERS_RESPONSE_HEADER.value),
      ...(wasmPlugin ? [await checkHeader(wasmPort, 'x-wasm-response', 'bench')] : []),
      await checkHeader(istio, 'x-envoy-peer-metadata-id', ISTIO_NODE_ID, ISTIO_PEER_HEADERS),
    ].filter((p): p is string => p !== undefined);
    if (problems.length) {
      await stopChild(child);
      throw new Error(`a feature listener does not do its job: ${problems.join('; ')}`);
    }
    return running(child, ports, missing, version(), 'SIGTERM', notes.join('; ') || undefined) satisfies Running;
  },
};
