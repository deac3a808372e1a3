// src/proxy/host-port.ts: the one place legate writes `address:port` (admin /clusters and
// /listeners, access-log address operators, the admin address file, health-check URLs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostKey } from '../../src/proxy/host-port.ts';
import { addressWithPort } from '../../src/proxy/http/formatter.ts';

test('hostKey: IPv4 and names as they are, IPv6 in brackets', () => {
  assert.equal(hostKey('127.0.0.1', 8080), '127.0.0.1:8080');
  assert.equal(hostKey('backend.local', 80), 'backend.local:80');
  assert.equal(hostKey('::1', 443), '[::1]:443');
  assert.equal(hostKey('fe80::1%eth0', 9), '[fe80::1%eth0]:9');
});

test('access-log address operators print through it; no address is no value', () => {
  assert.equal(addressWithPort({ address: '::ffff:127.0.0.1', port: 5000 }), '[::ffff:127.0.0.1]:5000');
  assert.equal(addressWithPort({ address: '127.0.0.1', port: 5000 }), '127.0.0.1:5000');
  assert.equal(addressWithPort(undefined), undefined);
});
