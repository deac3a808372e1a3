// The contestants, each started by the suite on its own CPU and stopped after: direct (no proxy),
// legate (--concurrency 1, and 2), nginx (1 worker, upstream keep-alive), HAProxy (nbthread 1),
// http-proxy (keep-alive agent) and the minimal node:http + undici proxy. nginx and HAProxy get
// config files written to the suite's temp dir and run in the foreground (no system service).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePorts, processTree, spawnPinned, stopChild, waitForPort, type Spawned } from '../lib/procs.ts';
import type { Contestant, Running, StartContext } from './types.ts';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const LEGATE_CLI = here('../../src/cli.ts');

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

function running(child: Spawned, ports: Running['ports'], missing: Running['missing'], version: string, signal: NodeJS.Signals = 'SIGTERM'): Running {
  return { ports, missing, version, pids: () => processTree(child.pid), stop: () => stopChild(child, signal) };
}

async function ready(child: Spawned, ports: readonly number[]): Promise<void> {
  try {
    for (const p of ports) await waitForPort(p, child);
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
}

const direct: Contestant = {
  name: 'direct',
  describe: 'client → upstream, no proxy',
  async start(ctx) {
    return { ports: { h1: ctx.upstream.h1, h2: ctx.upstream.h2, tcp: ctx.upstream.h1 }, missing: {}, version: '-', pids: () => [], stop: async () => {} };
  },
};

function legateBootstrap(ctx: StartContext, h1: number, tcp: number): Record<string, unknown> {
  const socket = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
  return {
    admin: { address: socket(0) },
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: socket(h1),
          filter_chains: [{ filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'ingress_http',
              codec_type: 'AUTO',
              route_config: {
                name: 'local_route',
                virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
              },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
            },
          }] }],
        },
        {
          name: 'tcp',
          address: socket(tcp),
          filter_chains: [{ filters: [{
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'tcp', cluster: 'app' },
          }] }],
        },
      ],
      clusters: [{
        name: 'app',
        type: 'STATIC',
        connect_timeout: '1s',
        load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(ctx.upstream.h1) } }] }] },
      }],
    },
  };
}

function legate(concurrency: number): Contestant {
  return {
    name: concurrency === 1 ? 'legate' : `legate-c${concurrency}`,
    describe: `legate --concurrency ${concurrency} (HCM codec AUTO, route table, router, stats on, no access log; tcp_proxy listener)`,
    async start(ctx) {
      const [h1, tcp] = await freePorts(2) as [number, number];
      const file = join(ctx.dir, `legate-c${concurrency}.yaml`);
      writeFileSync(file, stringify(legateBootstrap(ctx, h1, tcp)));
      const child = spawnPinned(ctx.cpu, process.execPath, [LEGATE_CLI, '-c', file, '--concurrency', String(concurrency), '-l', 'warning', '--drain-time-s', '1']);
      await ready(child, [h1, tcp]);
      return running(child, { h1, h2: h1, tcp }, {}, `legate ${(JSON.parse(readFileSync(here('../../package.json'), 'utf8')) as { version: string }).version}`);
    },
  };
}

const nginx: Contestant = {
  name: 'nginx',
  describe: 'nginx, 1 worker, upstream keepalive 64, access_log off; h2c via `listen … http2`; stream module for tcp',
  async start(ctx) {
    const bin = which('nginx');
    if (!bin) throw new Error('nginx not installed (apt-get install -y nginx)');
    const [h1, h2, tcp] = await freePorts(3) as [number, number, number];
    const dir = join(ctx.dir, 'nginx');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const streamSo = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find(existsSync);
    const location = `location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }`;
    const conf = [
      ...(streamSo ? [`load_module ${streamSo};`] : []),
      'daemon off;', 'master_process on;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/logs/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`, `  fastcgi_temp_path ${dir}/fcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
      '  keepalive_requests 1000000;', '  keepalive_timeout 120s;',
      `  upstream up { server 127.0.0.1:${ctx.upstream.h1}; keepalive 64; keepalive_requests 1000000; }`,
      `  server { listen 127.0.0.1:${h1}; ${location} }`,
      `  server { listen 127.0.0.1:${h2} http2; ${location} }`,
      '}',
      ...(streamSo ? [`stream { server { listen 127.0.0.1:${tcp}; proxy_pass 127.0.0.1:${ctx.upstream.h1}; } }`] : []),
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawnPinned(ctx.cpu, bin, ['-p', dir, '-c', join(dir, 'nginx.conf')]);
    await ready(child, streamSo ? [h1, h2, tcp] : [h1, h2]);
    const v = /nginx\/[\d.]+/.exec(spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr)?.[0] ?? 'nginx';
    return running(child, { h1, h2, ...(streamSo ? { tcp } : {}) }, streamSo ? {} : { tcp: 'nginx stream module not installed (apt-get install -y libnginx-mod-stream)' }, v, 'SIGTERM');
  },
};

const haproxy: Contestant = {
  name: 'haproxy',
  describe: 'HAProxy, nbthread 1, http-reuse always; h2c via `bind … proto h2`; mode tcp listener',
  async start(ctx) {
    const bin = which('haproxy');
    if (!bin) throw new Error('haproxy not installed (apt-get install -y haproxy)');
    const [h1, h2, tcp] = await freePorts(3) as [number, number, number];
    const conf = [
      'global', '  nbthread 1', '  maxconn 4000',
      'defaults', '  mode http', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '  timeout http-keep-alive 120s', '  option http-keep-alive',
      'frontend fe_h1', `  bind 127.0.0.1:${h1}`, '  default_backend be_up',
      'frontend fe_h2', `  bind 127.0.0.1:${h2} proto h2`, '  default_backend be_up',
      'backend be_up', '  http-reuse always', `  server s1 127.0.0.1:${ctx.upstream.h1}`,
      'listen tcp', '  mode tcp', `  bind 127.0.0.1:${tcp}`, `  server s1 127.0.0.1:${ctx.upstream.h1}`,
      '',
    ].join('\n');
    const file = join(ctx.dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    const child = spawnPinned(ctx.cpu, bin, ['-f', file, '-db']);
    await ready(child, [h1, h2, tcp]);
    const v = /HAProxy version (\S+)/.exec(execFileSync(bin, ['-v'], { encoding: 'utf8' }))?.[1] ?? '';
    return running(child, { h1, h2, tcp }, {}, `haproxy ${v}`);
  },
};

function nodeScript(name: string, describe: string, script: string, pkg: string): Contestant {
  return {
    name,
    describe,
    async start(ctx) {
      const [h1] = await freePorts(1) as [number];
      const child = spawnPinned(ctx.cpu, process.execPath, [here(script), String(h1), String(ctx.upstream.h1)]);
      await ready(child, [h1]);
      return running(child, { h1 }, { h2: 'HTTP/1.1 only (node:http server)', tcp: 'not a TCP proxy' }, pkg);
    },
  };
}

export const CONTESTANTS: readonly Contestant[] = [
  direct,
  legate(1),
  nginx,
  haproxy,
  nodeScript('http-proxy', 'node-http-proxy with a keep-alive agent (maxSockets 128)', './http-proxy-server.ts', 'http-proxy'),
  nodeScript('minimal', 'node:http server + undici Pool.stream (bench/contestants/minimal-proxy.ts)', './minimal-proxy.ts', 'undici'),
  legate(2),
];
