// ORIGINAL_DST's address parsing (x-envoy-original-dst-host), as Envoy's parseInternetAddressAndPort reads it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressAndPort } from '../../../src/proxy/upstream/original-dst.ts';

test('x-envoy-original-dst-host: IPv4:port and [IPv6]:port; names, missing ports and bad ports are invalid', () => {
  assert.deepEqual(parseAddressAndPort('10.195.16.237:8888'), { address: '10.195.16.237', port: 8888 });
  assert.deepEqual(parseAddressAndPort('[::1]:80'), { address: '::1', port: 80 });
  assert.deepEqual(parseAddressAndPort('127.0.0.1:0'), { address: '127.0.0.1', port: 0 });
  for (const bad of ['app.example:80', '10.0.0.1', '10.0.0.1:', '10.0.0.1:65536', '::1:80', '[10.0.0.1]:80', '[::1]', '10.0.0.1:80x', ' 10.0.0.1:80', '']) {
    assert.equal(parseAddressAndPort(bad), undefined, bad);
  }
});
