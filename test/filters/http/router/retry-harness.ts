// Shared setup for the retry tests: an HCM (use_remote_address, so loopback clients may send
// x-envoy-* headers) with a file access log of flags and attempt counts, routes from YAML, and
// upstreams whose answer depends on the attempt (x-envoy-attempt-count) of each request key.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROUTER_FILTER, startProxy, type Proxy } from './proxy-harness.ts';
import type { Req as UpReq } from './upstreams.ts';

export const ACCESS_FORMAT = '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %REQ(:PATH)%\n';

export function retryHcm(routes: string, logFile: string, vhExtra = ''): string {
  return `
stat_prefix: ingress_http
codec_type: AUTO
use_remote_address: true
access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${logFile}
    log_format: { text_format_source: { inline_string: ${JSON.stringify(ACCESS_FORMAT)} } }
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
    include_request_attempt_count: true
    include_attempt_count_in_response: true
${vhExtra}
    routes:
${routes}
${ROUTER_FILTER}`;
}

export interface RetryProxy extends Proxy {
  /** Access-log lines, once at least `lines` were written (waits briefly for the asynchronous writer). */
  log(lines?: number): Promise<string[]>;
}

export async function startRetryProxy(routes: string, clusters: string[], vhExtra = ''): Promise<RetryProxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'legate-retry-'));
  const file = path.join(dir, 'access.log');
  const p = await startProxy(retryHcm(routes, file, vhExtra), clusters);
  return {
    ...p,
    log: async (lines = 1) => {
      let out: string[] = [];
      for (let i = 0; i < 100 && out.length < lines; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 20));
        const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
        out = text ? text.split('\n') : [];
      }
      return out;
    },
    close: async () => {
      await p.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The attempt number the router sent (include_request_attempt_count). */
export function attemptOf(req: UpReq): number {
  return Number(req.headers['x-envoy-attempt-count'] ?? 0);
}

/** A cluster of several 127.0.0.1 ports. */
export function multiHostCluster(name: string, ports: readonly number[], http2: boolean, extra = ''): string {
  return `
name: ${name}
connect_timeout: 1s
lb_policy: ROUND_ROBIN
load_assignment:
  cluster_name: ${name}
  endpoints:
  - lb_endpoints:
${ports.map((p) => `    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`).join('\n')}
${http2 ? `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }` : ''}
${extra}`;
}

export const COMBOS = [
  ['h1', 'http1'],
  ['h2', 'http2'],
  ['h1', 'http2'],
  ['h2', 'http1'],
] as const;
