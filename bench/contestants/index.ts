// The contestants, each started by the suite on its own CPU and stopped after: direct (no proxy),
// legate (--concurrency 1, and 2, and legate-ext with the filter and Wasm listeners), nginx
// (1 worker, upstream keep-alive), HAProxy (nbthread 1), http-proxy (keep-alive agent) and the
// minimal node:http + undici proxy. Each serves the listener kinds it can (types.ts `Listener`).

import { SERVER_NAME } from '../lib/pki.ts';
import { freePorts, spawnPinned } from '../lib/procs.ts';
import { here, ready, running } from './common.ts';
import { legate, legateExt } from './legate.ts';
import { haproxy, nginx } from './native.ts';
import type { Contestant } from './types.ts';

const direct: Contestant = {
  name: 'direct',
  describe: 'client → upstream, no proxy (TLS scenarios: the upstream\'s HTTPS port; mtls-up-12b: plain HTTP/1.1)',
  async start(ctx) {
    const u = ctx.upstream;
    return { ports: { h1: u.h1, h2: u.h2, tcp: u.h1, tls: u.tls, mtlsUp: u.h1, mtls: u.mtls, filters: u.h1, wasm: u.h1, istio: u.h1 }, missing: {}, version: '-', pids: () => [], stop: async () => {} };
  },
};

const httpProxy: Contestant = {
  name: 'http-proxy',
  describe: 'node-http-proxy with a keep-alive agent (maxSockets 128)',
  async start(ctx) {
    const [h1] = await freePorts(1) as [number];
    const child = spawnPinned(ctx.cpu, process.execPath, [here('./http-proxy-server.ts'), String(h1), String(ctx.upstream.h1)]);
    await ready(child, [h1]);
    const noTls = 'TLS not set up for http-proxy in the suite (plain HTTP/1.1 only)';
    return running(child, { h1 }, { h2: 'HTTP/1.1 only (node:http server)', tcp: 'not a TCP proxy', tls: noTls, mtlsUp: noTls, mtls: noTls }, 'http-proxy');
  },
};

const minimal: Contestant = {
  name: 'minimal',
  describe: 'node:http server + undici Pool.stream (bench/contestants/minimal-proxy.ts); h2c with node:http2\'s core \'stream\' API + the same Pool; node:https servers and an undici Pool over TLS for the TLS scenarios; TCP: net sockets piped both ways (stream.pipe)',
  async start(ctx) {
    const [h1, h2, tls, mtlsUp, mtls, tcp] = await freePorts(6) as [number, number, number, number, number, number];
    const { pki } = ctx;
    const extraArgs = { h2, tcp, tls, mtlsUp, mtls, upstreamMtls: ctx.upstream.mtls, ca: pki.caFile, serverCert: pki.server.cert, serverKey: pki.server.key, clientCert: pki.client.cert, clientKey: pki.client.key, servername: SERVER_NAME };
    const child = spawnPinned(ctx.cpu, process.execPath, [here('./minimal-proxy.ts'), String(h1), String(ctx.upstream.h1), JSON.stringify(extraArgs)]);
    await ready(child, [h1, h2, tls, mtlsUp, mtls, tcp]);
    return running(child, { h1, h2, tls, mtlsUp, mtls, tcp }, {}, 'undici');
  },
};

export const CONTESTANTS: readonly Contestant[] = [direct, legate(1), nginx, haproxy, httpProxy, minimal, legate(2), legateExt];
