// per_connection_buffer_limit_bytes from the listener bounds what a filter may buffer: a request
// body beyond it, buffered by a stopped filter, is answered 413 (HTTP/1.1 and HTTP/2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startProxy, h2request } from './harness.ts';

test('a buffered request body over the listener buffer limit gets 413; under it passes', async () => {
  const p = await startProxy({}, { bufferLimitBytes: 1024 });
  try {
    const url = `http://127.0.0.1:${p.port}/`;
    const big = await request(url, { method: 'POST', headers: { 'x-test-pause-ms': '100' }, body: Buffer.alloc(4096, 97) });
    assert.equal(big.statusCode, 413);
    await big.body.dump();
    const small = await request(url, { method: 'POST', headers: { 'x-test-pause-ms': '100' }, body: Buffer.alloc(512, 97) });
    assert.equal(small.statusCode, 200);
    await small.body.dump();
    const h2big = await h2request(p.port, { ':method': 'POST', ':path': '/', 'x-test-pause-ms': '100' }, Buffer.alloc(4096, 97));
    assert.equal(h2big.status, 413);
    assert.equal(p.counter('downstream_rq_too_large'), 2);
  } finally {
    await p.close();
  }
});
