// The filter manager resuming a stopped response side from outside the filter's hook (a timer, an
// async call's answer), for a filter at each place in a three-filter chain: the response headers,
// the body it held and the trailers go on to the filters after it in encode order, once each, in
// order; and data a filter injects goes on from the filter after it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterManager, type FilterChainSink } from '../../../src/proxy/http/filter-manager.ts';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter } from '../../../src/filters/http/filter.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';

function recordingSink(out: string[]): FilterChainSink {
  return {
    encodeHeaders: (h, end) => void out.push(`headers ${h.get(':status')} ${end}`),
    encodeData: (d, end) => void out.push(`data ${d.toString()} ${end}`),
    encodeTrailers: (t) => void out.push(`trailers ${t.get('x-t')}`),
    bufferOverflow: () => void out.push('overflow'),
    watermark: () => undefined,
  };
}

/** Notes what it sees on the response side under `name`. */
const watcher = (name: string, seen: string[]): HttpFilter => ({
  onResponseHeaders: () => (seen.push(`${name}:headers`), FilterHeadersStatus.Continue),
  onResponseBody: (d) => (seen.push(`${name}:data ${d.toString()}`), FilterDataStatus.Continue),
  onResponseTrailers: () => (seen.push(`${name}:trailers`), FilterTrailersStatus.Continue),
});

for (const at of [0, 1, 2]) {
  test(`a filter at decode index ${at} of 3 that stops the response resumes it later with continueEncoding`, async () => {
    const out: string[] = [];
    const seen: string[] = [];
    let resume: (() => void) | undefined;
    const pausing: HttpFilter = {
      onResponseHeaders: () => FilterHeadersStatus.StopIteration,
      onResponseBody: () => FilterDataStatus.StopIterationAndBuffer,
      onResponseTrailers: () => FilterTrailersStatus.StopIteration,
    };
    const filters = [0, 1, 2].map((i) => (i === at ? pausing : watcher(`f${i}`, seen)));
    const fm = new FilterManager(filters, recordingSink(out), 1 << 20);
    resume = () => fm.continueEncoding(at);
    const h = new HeaderMap();
    h.set(':status', '200');
    fm.encodeHeaders(h, false);
    fm.encodeData(Buffer.from('a'), false);
    const t = new HeaderMap();
    t.set('x-t', '1');
    fm.encodeTrailers(t);
    assert.deepEqual(out, [], 'held');
    await new Promise((r) => setImmediate(r));
    resume();
    assert.deepEqual(out, ['headers 200 false', 'data a false', 'trailers 1']);
    // Encode order is 2, 1, 0: the filters after `at` saw everything once, those before it already had.
    const after = [0, 1, 2].filter((i) => i < at);
    for (const i of after) assert.deepEqual(seen.filter((s) => s.startsWith(`f${i}:`)), [`f${i}:headers`, `f${i}:data a`, `f${i}:trailers`]);
  });
}

test('injectEncodedData goes on from the filter after the injecting one', () => {
  const out: string[] = [];
  const seen: string[] = [];
  const filters = [watcher('first', seen), watcher('middle', seen), watcher('last', seen)];
  const fm = new FilterManager(filters, recordingSink(out), 1 << 20);
  fm.injectEncodedData(1, Buffer.from('made'), true);
  assert.deepEqual(seen, ['first:data made'], 'only the filter after decode index 1 in encode order (index 0)');
  assert.deepEqual(out, ['data made true']);
});
