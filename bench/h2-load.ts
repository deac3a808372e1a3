// A small h2c load generator (autocannon speaks only HTTP/1.1), run as a child process pinned with
// the upstream: `node bench/h2-load.ts <origin> <path> <connections> <streams-per-connection> <seconds>`
// keeps that many streams in flight per connection for the duration and prints one JSON line:
// {requests, errors, seconds, p50Ms, p90Ms, p99Ms}. Latency is per request (headers sent → body end).

import http2 from 'node:http2';

const [origin = '', path = '/', connArg = '4', streamsArg = '10', secondsArg = '5'] = process.argv.slice(2);
const connections = Number(connArg);
const streams = Number(streamsArg);
const seconds = Number(secondsArg);
const latencies: number[] = [];
let errors = 0;
const start = performance.now();
const end = start + seconds * 1000;

async function connection(): Promise<void> {
  const session = http2.connect(origin);
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => { session.once('connect', () => resolve()); session.once('error', reject); });
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = session.request({ ':path': path });
      let ok = false;
      req.on('response', (h) => (ok = h[':status'] === 200));
      req.on('data', () => {});
      req.on('end', () => { if (ok) latencies.push(performance.now() - t0); else errors++; resolve(); });
      req.on('error', () => { errors++; resolve(); });
      req.end();
    });
  const loop = async (): Promise<void> => { while (performance.now() < end && !session.destroyed) await one(); };
  await Promise.all(Array.from({ length: streams }, loop));
  session.close();
}

await Promise.all(Array.from({ length: connections }, () => connection().catch(() => { errors++; })));
const took = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (q: number): number => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! : Number.NaN);
process.stdout.write(`${JSON.stringify({ requests: latencies.length, errors, seconds: took, p50Ms: pct(0.5), p90Ms: pct(0.9), p99Ms: pct(0.99) })}\n`);
