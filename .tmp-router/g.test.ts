import http2 from 'node:http2';
import { startProxy, ROUTER_FILTER } from '../test/filters/http/router/proxy-harness.ts';
import { clusterYaml } from '../test/filters/http/router/harness.ts';
const up = http2.createServer();
up.on('stream', (s, h) => { console.log('upstream got', h['grpc-timeout']); s.respond({':status': 200, 'content-type': 'application/grpc', 'grpc-status': '4', 'grpc-message': 'x'}, {endStream: true}); s.on('close', () => console.log('upstream stream closed', s.rstCode)); });
await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
const p = await startProxy(`
stat_prefix: ingress_http
route_config:
  virtual_hosts:
  - name: grpc
    domains: ["*"]
    routes:
    - match: { prefix: / }
      route: { cluster: grpc, max_stream_duration: { grpc_timeout_header_max: 0.1s } }
${ROUTER_FILTER}`, [clusterYaml('grpc', (up.address() as any).port, true)]);
const c = http2.connect(`http://127.0.0.1:${p.port}`);
const st = c.request({ ':method': 'POST', ':path': '/x.Y/Z', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '5S' });
st.on('response', (h, f) => console.log('response', h, f));
st.on('trailers', (h) => console.log('trailers', h));
st.on('data', (d) => console.log('data', d));
st.on('close', () => { console.log('closed', st.rstCode); process.exit(0); });
st.end(Buffer.from([0,0,0,0,0]));
setTimeout(() => process.exit(1), 3000);
