// The PROXY header parser against the specification's own examples and byte layouts (HAProxy's
// proxy-protocol.txt): version 1 lines, version 2 blocks with TLVs, LOCAL, UNSPEC, and the
// malformed or unsupported headers that close a connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader, V2_SIGNATURE } from '../../../../src/filters/listener/proxy_protocol/header.ts';

const v1 = (line: string, rest = ''): Buffer => Buffer.from(`${line}\r\n${rest}`, 'latin1');

function v2(command: number, famProto: number, addr: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length + tlvs.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20 | command, famProto]), len, addr, tlvs]);
}

function tlv(type: number, value: string): Buffer {
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(value.length, 1);
  return Buffer.concat([b, Buffer.from(value)]);
}

const ipv4Block = Buffer.from([192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb]); // 56324 → 443

test('version 1: TCP4 and TCP6 lines give both ends; UNKNOWN keeps the connection’s own; the rest of the bytes are not part of it', () => {
  const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443';
  const r = parseProxyHeader(v1(line, 'GET / HTTP/1.1\r\n'));
  assert.deepEqual(r, { kind: 'header', version: 1, length: line.length + 2, addresses: { sourceIp: '192.168.0.1', sourcePort: 56324, destinationIp: '192.168.0.11', destinationPort: 443 }, tlvs: [] });
  const six = parseProxyHeader(v1('PROXY TCP6 2001:db8::1 ::1 65535 0'));
  assert.equal(six.kind, 'header');
  assert.deepEqual(six.kind === 'header' && six.addresses, { sourceIp: '2001:db8::1', sourcePort: 65535, destinationIp: '::1', destinationPort: 0 });
  const unknown = 'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535';
  assert.deepEqual(parseProxyHeader(v1(unknown)), { kind: 'header', version: 1, length: unknown.length + 2, addresses: undefined, tlvs: [] });
});

test('version 1: partial lines wait; bad lines are errors', () => {
  for (const partial of ['P', 'PROXY', 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 44']) assert.deepEqual(parseProxyHeader(Buffer.from(partial)), { kind: 'more' }, partial);
  const errors = [
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324', // a field short
    'PROXY TCP4 2001:db8::1 192.168.0.11 1 2', // family and address disagree
    'PROXY TCP4 192.168.0.1 192.168.0.11 65536 443', // port out of range
    'PROXY TCP4 192.168.0.1 192.168.0.11 0443 443', // leading zero
    'PROXY UDP4 192.168.0.1 192.168.0.11 1 2',
    'PROXY TCP4  192.168.0.1 192.168.0.11 1 2', // two spaces
  ];
  for (const line of errors) assert.equal(parseProxyHeader(v1(line)).kind, 'error', line);
  assert.equal(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(110)}`)).kind, 'error', 'no CRLF within 107 bytes');
});

test('version 2: PROXY over TCP4 and TCP6 with TLVs; LOCAL and UNSPEC keep the connection’s own addresses', () => {
  const withTlvs = v2(1, 0x11, ipv4Block, Buffer.concat([tlv(0x02, 'example.com'), tlv(0x05, 'id-1')]));
  const r = parseProxyHeader(Buffer.concat([withTlvs, Buffer.from('payload')]));
  assert.equal(r.kind, 'header');
  if (r.kind !== 'header') return;
  assert.equal(r.length, withTlvs.length);
  assert.deepEqual(r.addresses, { sourceIp: '192.168.0.1', sourcePort: 56324, destinationIp: '192.168.0.11', destinationPort: 443 });
  assert.deepEqual(r.tlvs.map((t) => [t.type, t.value.toString()]), [[0x02, 'example.com'], [0x05, 'id-1']]);

  const src6 = Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const dst6 = Buffer.alloc(16);
  dst6[15] = 1;
  const six = parseProxyHeader(v2(1, 0x21, Buffer.concat([src6, dst6, Buffer.from([0x1f, 0x90, 0x00, 0x50])])));
  assert.deepEqual(six.kind === 'header' && six.addresses, { sourceIp: '2001:db8::1', sourcePort: 8080, destinationIp: '::1', destinationPort: 80 });

  assert.deepEqual(parseProxyHeader(v2(0, 0x11, ipv4Block)), { kind: 'header', version: 2, length: 28, addresses: undefined, tlvs: [] });
  assert.deepEqual(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0))), { kind: 'header', version: 2, length: 16, addresses: undefined, tlvs: [] });
});

test('version 2: partial blocks wait; unsupported or malformed ones are errors; anything else is no header at all', () => {
  const whole = v2(1, 0x11, ipv4Block);
  for (const n of [1, 11, 12, 15, 16, whole.length - 1]) assert.deepEqual(parseProxyHeader(whole.subarray(0, n)), { kind: 'more' }, `${n} bytes`);
  const bad: Array<[string, Buffer]> = [
    ['version 1 in the version nibble', Buffer.concat([V2_SIGNATURE, Buffer.from([0x11, 0x11, 0, 12]), ipv4Block])],
    ['command 2', v2(2, 0x11, ipv4Block)],
    ['UDP', v2(1, 0x12, ipv4Block)],
    ['AF_UNIX', v2(1, 0x31, Buffer.alloc(216))],
    ['a short address block', v2(1, 0x11, ipv4Block.subarray(0, 8))],
    ['a TLV longer than the header', v2(1, 0x11, ipv4Block, Buffer.from([0x02, 0x00, 0x09, 0x61]))],
  ];
  for (const [what, b] of bad) assert.equal(parseProxyHeader(b).kind, 'error', what);
  for (const other of ['GET / HTTP/1.1\r\n', '\x16\x03\x01', 'PRI * HTTP/2.0', 'PROXI']) assert.deepEqual(parseProxyHeader(Buffer.from(other, 'latin1')), { kind: 'not_found' }, other);
});
