// H2ResponseEncoder.release(): once a stream is over, nothing node:http2 holds (the
// ServerHttp2Stream and its listeners) reaches the stream behind it any more, so a ServerHttp2Stream
// that outlives young-generation GCs does not drag the stream's objects along. Checked on a real
// h2c connection over 127.0.0.1 with a WeakRef and a forced full GC, the ServerHttp2Stream kept
// strongly referenced throughout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { H2ResponseEncoder, type H2RequestSink } from '../../../src/proxy/http/codec-http2.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

class RecordingSink implements H2RequestSink {
  done = false;
  readonly events: string[] = [];
  decodeData(data: Buffer, endStream: boolean): void {
    this.events.push(`data ${data.length} ${endStream}`);
  }
  decodeTrailers(): void {
    this.events.push('trailers');
  }
  onDownstreamReset(reason: string): void {
    this.events.push(`reset ${reason}`);
  }
}

interface Served {
  /** The ServerHttp2Stream, held here for the whole test. */
  readonly h2: ServerHttp2Stream;
  readonly sink: WeakRef<RecordingSink>;
  readonly events: string[];
}

/** One POST over h2c; the server binds an encoder to a sink, reads the body, answers, and releases or not. */
async function serveOne(release: boolean): Promise<Served> {
  const server = http2.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const served = new Promise<Served>((resolve) => {
    server.on('stream', (h2: ServerHttp2Stream) => {
      let sink: RecordingSink | undefined = new RecordingSink();
      const events = sink.events;
      const enc = new H2ResponseEncoder(h2);
      enc.bind(sink);
      enc.readBody();
      h2.on('end', () => {
        const h = new HeaderMap();
        h.add(':status', '200');
        enc.encodeHeaders(h, false);
        enc.encodeData(Buffer.from('ok'), true);
        sink!.done = true;
        if (release) enc.release();
        const ref = new WeakRef(sink!);
        sink = undefined;
        h2.once('close', () => resolve({ h2, sink: ref, events }));
      });
    });
  });
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const req = client.request({ ':method': 'POST', ':path': '/' });
  req.end('body');
  const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
  req.resume();
  await new Promise<void>((r) => req.on('close', () => r()));
  const out = await served;
  client.close();
  await new Promise<void>((r) => server.close(() => r()));
  assert.equal(status, 200);
  return out;
}

/** Full GCs until `ref` clears (a few tries: the release of what a tick held is not immediate). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

test('after release() the ServerHttp2Stream no longer reaches the stream behind it', async () => {
  const { h2, sink, events } = await serveOne(true);
  assert.deepEqual(events, ['data 4 false', 'data 0 true']);
  assert.equal(await collected(sink), true, 'the sink was collected while the ServerHttp2Stream is alive');
  assert.ok(h2.destroyed);
});

test('without release() the ServerHttp2Stream keeps the stream behind it reachable (the control)', async () => {
  const { h2, sink } = await serveOne(false);
  assert.equal(await collected(sink), false, 'the listeners still reach the sink');
  assert.ok(h2.destroyed);
});
