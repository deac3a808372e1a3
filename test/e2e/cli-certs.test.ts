// `legate certs` end to end through the real CLI process: a CA, leaves with SPIFFE IDs whose files
// parse, verify and serve a real mTLS handshake, CSR creation and signing, and exit codes
// (2 for a bad command line, 1 for unreadable or wrong files, naming them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/legate.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'legate-certs-'));
const read = (f: string): string => readFileSync(f, 'utf8');
const mode = (f: string): number => statSync(f).mode & 0o777;
const certs = (pem: string): X509Certificate[] => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? []).map((p) => new X509Certificate(p));

test('certs --help documents every command; no command is a usage error', async () => {
  const help = await runCli(['certs', '--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const cmd of ['certs ca', 'certs issue', 'certs csr', 'certs sign-csr', '--spiffe', '--trust-domain']) assert.ok(help.stdout.includes(cmd), cmd);
  const sub = await runCli(['certs', 'issue', '--help']);
  assert.equal(sub.code, 0);
  const none = await runCli(['certs']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /legate certs issue/);
});

test('ca then issue with SPIFFE IDs: files parse, verify, carry the SANs, and serve mTLS', async () => {
  const dir = tmp();
  const ca = await runCli(['certs', 'ca', '--out', join(dir, 'ca'), '--key-type', 'ecdsa', '--cn', 'mesh root']);
  assert.equal(ca.code, 0, ca.stderr);
  const caCert = new X509Certificate(read(join(dir, 'ca', 'ca.crt')));
  assert.equal(caCert.subject, 'O=legate-dev\nCN=mesh root');
  assert.equal(caCert.ca, true);
  assert.equal(caCert.publicKey.asymmetricKeyType, 'ec');
  assert.ok(caCert.checkPrivateKey(createPrivateKey(read(join(dir, 'ca', 'ca.key')))));
  assert.equal(mode(join(dir, 'ca', 'ca.key')), 0o600);

  const [server, client] = await Promise.all([
    runCli(['certs', 'issue', '--ca', join(dir, 'ca'), '--out', join(dir, 'out'), '--name', 'server', '--spiffe', 'spiffe://cluster.local/ns/default/sa/server', '--dns', 'localhost,*.example.com', '--ip', '127.0.0.1', '--key-type', 'rsa']),
    runCli(['certs', 'issue', '--ca', join(dir, 'ca'), '--out', join(dir, 'out'), '--name', 'client', '--trust-domain', 'cluster.local', '--ns', 'default', '--sa', 'client', '--days', '2']),
  ]);
  assert.equal(server.code, 0, server.stderr);
  assert.equal(client.code, 0, client.stderr);
  const sans = 'DNS:localhost, DNS:*.example.com, URI:spiffe://cluster.local/ns/default/sa/server, IP Address:127.0.0.1';
  assert.ok(server.stdout.includes(`SANs: ${sans}`), server.stdout);
  for (const f of ['server.crt', 'server.key', 'server-chain.crt']) assert.ok(server.stdout.includes(join(dir, 'out', f)), f);

  const leaf = certs(read(join(dir, 'out', 'server.crt')));
  assert.equal(leaf.length, 1, 'NAME.crt holds the leaf only');
  assert.equal(leaf[0]!.subjectAltName, sans);
  assert.ok(leaf[0]!.verify(caCert.publicKey));
  assert.ok(leaf[0]!.checkPrivateKey(createPrivateKey(read(join(dir, 'out', 'server.key')))));
  assert.equal(mode(join(dir, 'out', 'server.key')), 0o600);
  const chain = certs(read(join(dir, 'out', 'server-chain.crt')));
  assert.deepEqual(chain.map((c) => c.fingerprint256), [leaf[0]!.fingerprint256, caCert.fingerprint256]);
  const clientCert = new X509Certificate(read(join(dir, 'out', 'client.crt')));
  assert.equal(clientCert.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/client');
  assert.ok(Math.abs((clientCert.validToDate.getTime() - Date.now()) / 86_400_000 - 2) < 0.1);

  // The files as a proxy would use them: chain + key on the server, CA as trust on both sides.
  let peerSan: string | undefined;
  const srv = createServer({ cert: read(join(dir, 'out', 'server-chain.crt')), key: read(join(dir, 'out', 'server.key')), ca: read(join(dir, 'ca', 'ca.crt')), requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
    peerSan = s.getPeerX509Certificate()?.subjectAltName;
    s.end('ok');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, servername: 'api.example.com', ca: read(join(dir, 'ca', 'ca.crt')), cert: read(join(dir, 'out', 'client.crt')), key: read(join(dir, 'out', 'client.key')) });
      let body = '';
      c.on('data', (d: Buffer) => (body += d));
      c.on('end', () => resolve(body));
      c.on('error', reject);
    });
    assert.equal(reply, 'ok');
    assert.equal(peerSan, 'URI:spiffe://cluster.local/ns/default/sa/client');
  } finally {
    await new Promise((r) => srv.close(r));
  }
});

test('csr --new-key then sign-csr: the certificate is for that key with the requested SANs', async () => {
  const dir = tmp();
  assert.equal((await runCli(['certs', 'ca', '--out', dir])).code, 0);
  const csr = await runCli(['certs', 'csr', '--new-key', join(dir, 'w.key'), '--key-type', 'ecdsa', '--out', join(dir, 'w.csr'), '--cn', 'w', '--spiffe', 'spiffe://td.example/ns/a/sa/w', '--dns', 'w.a.svc']);
  assert.equal(csr.code, 0, csr.stderr);
  assert.match(csr.stdout, /requested SANs: DNS:w\.a\.svc, URI:spiffe:\/\/td\.example\/ns\/a\/sa\/w/);
  assert.equal(mode(join(dir, 'w.key')), 0o600);
  assert.match(read(join(dir, 'w.csr')), /^-----BEGIN CERTIFICATE REQUEST-----/);
  const signed = await runCli(['certs', 'sign-csr', '--ca', dir, '--csr', join(dir, 'w.csr'), '--out', join(dir, 'w.crt'), '--days', '5']);
  assert.equal(signed.code, 0, signed.stderr);
  const cert = new X509Certificate(read(join(dir, 'w.crt')));
  assert.equal(cert.subjectAltName, 'DNS:w.a.svc, URI:spiffe://td.example/ns/a/sa/w');
  assert.ok(cert.checkPrivateKey(createPrivateKey(read(join(dir, 'w.key')))));
  assert.ok(cert.verify(new X509Certificate(read(join(dir, 'ca.crt'))).publicKey));
  // Reusing an existing key.
  const again = await runCli(['certs', 'csr', '--key', join(dir, 'w.key'), '--out', join(dir, 'w2.csr'), '--dns', 'w2']);
  assert.equal(again.code, 0, again.stderr);
});

test('bad command lines exit 2 with a message', async () => {
  const dir = tmp();
  assert.equal((await runCli(['certs', 'ca', '--out', dir])).code, 0);
  const issue = ['certs', 'issue', '--ca', dir, '--out', dir];
  const cases: Array<[string[], RegExp]> = [
    [['certs', 'frobnicate'], /unknown command "frobnicate"/],
    [['certs', 'ca'], /--out is required/],
    [['certs', 'ca', '--out', dir, '--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['certs', 'ca', '--out', join(dir, 'x'), '--key-type', 'dsa'], /--key-type: expected rsa or ecdsa, got "dsa"/],
    [['certs', 'ca', '--out', join(dir, 'x'), '--days', '-3'], /--days/],
    [[...issue, '--dns', 'a'], /--name is required/],
    [[...issue, '--name', 'a'], /give at least one identity/],
    [[...issue, '--name', '../a', '--dns', 'a'], /--name "\.\.\/a"/],
    [[...issue, '--name', 'a', '--spiffe', 'http://x/y'], /invalid SPIFFE ID "http:\/\/x\/y"/],
    [[...issue, '--name', 'a', '--spiffe', 'spiffe://td/ns/a/sa/b', '--ns', 'x'], /either --spiffe or --trust-domain\/--ns\/--sa/],
    [[...issue, '--name', 'a', '--trust-domain', 'td', '--ns', 'x'], /--trust-domain, --ns and --sa go together/],
    [[...issue, '--name', 'a', '--ip', '1.2.3'], /invalid IP SAN "1\.2\.3"/],
    [['certs', 'csr', '--out', join(dir, 'c.csr')], /exactly one of --key FILE .* or --new-key FILE/],
    [['certs', 'csr', '--new-key', join(dir, 'k.key'), '--out', join(dir, 'c.csr'), '--ip', 'localhost'], /invalid IP SAN "localhost"/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((r, i) => {
    const [args, message] = cases[i]!;
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  });
  for (const f of ['a.crt', 'a.key', 'k.key', 'c.csr']) assert.ok(!existsSync(join(dir, f)), `nothing written on a usage error (${f})`);
});

test('failures exit 1 naming the file', async () => {
  const dir = tmp();
  const missing = await runCli(['certs', 'issue', '--ca', join(dir, 'nope'), '--out', dir, '--name', 'a', '--dns', 'a']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`cannot read CA certificate ${join(dir, 'nope', 'ca.crt')}: ENOENT`));

  assert.equal((await runCli(['certs', 'ca', '--out', join(dir, 'one')])).code, 0);
  assert.equal((await runCli(['certs', 'ca', '--out', join(dir, 'two')])).code, 0);
  const refused = await runCli(['certs', 'ca', '--out', join(dir, 'one')]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refusing to replace .*one\/ca\.key.*--force/);
  assert.equal((await runCli(['certs', 'ca', '--out', join(dir, 'one'), '--force'])).code, 0);

  writeFileSync(join(dir, 'two', 'ca.key'), read(join(dir, 'one', 'ca.key')));
  const mismatch = await runCli(['certs', 'issue', '--ca', join(dir, 'two'), '--out', dir, '--name', 'a', '--dns', 'a']);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /two\/ca\.key: does not match .*two\/ca\.crt/);

  const notCsr = await runCli(['certs', 'sign-csr', '--ca', join(dir, 'one'), '--csr', join(dir, 'one', 'ca.crt'), '--out', join(dir, 'x.crt')]);
  assert.equal(notCsr.code, 1);
  assert.match(notCsr.stderr, /one\/ca\.crt: no PEM CERTIFICATE REQUEST block found/);
});
