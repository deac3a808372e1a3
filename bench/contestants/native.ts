// nginx and HAProxy as the suite runs them: config files written to the suite's temp dir, run in
// the foreground (no system service), one worker / one thread, upstream keep-alive; listeners for
// plain, h2c, TCP, TLS termination, plain → mTLS upstream and mTLS both ways.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_NAME } from '../lib/pki.ts';
import { freePorts, spawnPinned } from '../lib/procs.ts';
import { ready, running, which } from './common.ts';
import type { Contestant } from './types.ts';

export const nginx: Contestant = {
  name: 'nginx',
  describe: 'nginx, 1 worker, upstream keepalive 64, access_log off; h2c via `listen … http2`; stream module for tcp; `listen … ssl`; mTLS upstream with proxy_ssl_verify + proxy_ssl_session_reuse',
  async start(ctx) {
    const bin = which('nginx');
    if (!bin) throw new Error('nginx not installed (apt-get install -y nginx)');
    const [h1, h2, tcp, tls, mtlsUp, mtls] = await freePorts(6) as [number, number, number, number, number, number];
    const dir = join(ctx.dir, 'nginx');
    const { pki } = ctx;
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const streamSo = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find(existsSync);
    const keepalive = 'proxy_http_version 1.1; proxy_set_header Connection "";';
    const location = `location / { proxy_pass http://up; ${keepalive} }`;
    const mtlsLocation = [
      `location / { proxy_pass https://up_mtls; ${keepalive}`,
      `proxy_ssl_certificate ${pki.client.cert}; proxy_ssl_certificate_key ${pki.client.key};`,
      `proxy_ssl_trusted_certificate ${pki.caFile}; proxy_ssl_verify on; proxy_ssl_name ${SERVER_NAME}; proxy_ssl_server_name on; proxy_ssl_session_reuse on; }`,
    ].join(' ');
    const serverCert = `ssl_certificate ${pki.server.cert}; ssl_certificate_key ${pki.server.key};`;
    const conf = [
      ...(streamSo ? [`load_module ${streamSo};`] : []),
      'daemon off;', 'master_process on;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/logs/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`, `  fastcgi_temp_path ${dir}/fcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
      '  keepalive_requests 1000000;', '  keepalive_timeout 120s;',
      `  upstream up { server 127.0.0.1:${ctx.upstream.h1}; keepalive 64; keepalive_requests 1000000; }`,
      `  upstream up_mtls { server 127.0.0.1:${ctx.upstream.mtls}; keepalive 64; keepalive_requests 1000000; }`,
      `  server { listen 127.0.0.1:${h1}; ${location} }`,
      `  server { listen 127.0.0.1:${h2} http2; ${location} }`,
      `  server { listen 127.0.0.1:${tls} ssl; ${serverCert} ${location} }`,
      `  server { listen 127.0.0.1:${mtlsUp}; ${mtlsLocation} }`,
      `  server { listen 127.0.0.1:${mtls} ssl; ${serverCert} ssl_client_certificate ${pki.caFile}; ssl_verify_client on; ${mtlsLocation} }`,
      '}',
      ...(streamSo ? [`stream { server { listen 127.0.0.1:${tcp}; proxy_pass 127.0.0.1:${ctx.upstream.h1}; } }`] : []),
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawnPinned(ctx.cpu, bin, ['-p', dir, '-c', join(dir, 'nginx.conf')]);
    await ready(child, [h1, h2, tls, mtlsUp, mtls, ...(streamSo ? [tcp] : [])]);
    const v = /nginx\/[\d.]+/.exec(spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr)?.[0] ?? 'nginx';
    return running(child, { h1, h2, tls, mtlsUp, mtls, ...(streamSo ? { tcp } : {}) }, streamSo ? {} : { tcp: 'nginx stream module not installed (apt-get install -y libnginx-mod-stream)' }, v, 'SIGTERM');
  },
};

export const haproxy: Contestant = {
  name: 'haproxy',
  describe: 'HAProxy, nbthread 1, http-reuse always; h2c via `bind … proto h2`; mode tcp listener; `bind … ssl crt`; mTLS upstream `server … ssl crt … ca-file … verify required`',
  async start(ctx) {
    const bin = which('haproxy');
    if (!bin) throw new Error('haproxy not installed (apt-get install -y haproxy)');
    const [h1, h2, tcp, tls, mtlsUp, mtls] = await freePorts(6) as [number, number, number, number, number, number];
    const { pki } = ctx;
    const conf = [
      'global', '  nbthread 1', '  maxconn 4000',
      'defaults', '  mode http', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '  timeout http-keep-alive 120s', '  option http-keep-alive',
      'frontend fe_h1', `  bind 127.0.0.1:${h1}`, '  default_backend be_up',
      'frontend fe_h2', `  bind 127.0.0.1:${h2} proto h2`, '  default_backend be_up',
      'frontend fe_tls', `  bind 127.0.0.1:${tls} ssl crt ${pki.server.combined}`, '  default_backend be_up',
      'frontend fe_mtls_up', `  bind 127.0.0.1:${mtlsUp}`, '  default_backend be_mtls',
      'frontend fe_mtls', `  bind 127.0.0.1:${mtls} ssl crt ${pki.server.combined} ca-file ${pki.caFile} verify required`, '  default_backend be_mtls',
      'backend be_up', '  http-reuse always', `  server s1 127.0.0.1:${ctx.upstream.h1}`,
      'backend be_mtls', '  http-reuse always', `  server s1 127.0.0.1:${ctx.upstream.mtls} ssl crt ${pki.client.combined} ca-file ${pki.caFile} verify required sni str(${SERVER_NAME}) verifyhost ${SERVER_NAME}`,
      'listen tcp', '  mode tcp', `  bind 127.0.0.1:${tcp}`, `  server s1 127.0.0.1:${ctx.upstream.h1}`,
      '',
    ].join('\n');
    const file = join(ctx.dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    const child = spawnPinned(ctx.cpu, bin, ['-f', file, '-db']);
    await ready(child, [h1, h2, tcp, tls, mtlsUp, mtls]);
    const v = /HAProxy version (\S+)/.exec(execFileSync(bin, ['-v'], { encoding: 'utf8' }))?.[1] ?? '';
    return running(child, { h1, h2, tcp, tls, mtlsUp, mtls }, {}, `haproxy ${v}`);
  },
};
