// `legate certs ...`: a development mesh CA on the command line (root CA, leaf certificates with
// SPIFFE IDs, CSRs and CSR signing), over src/proxy/tls/dev-ca.ts.
// Exit codes: 0 ok, 1 a failure (unreadable or mismatched CA files, bad CSR; the file is named),
// 2 bad command line (unknown flag, missing flag, invalid SAN/SPIFFE ID/lifetime).

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { parseArgs as parseFlags } from 'node:util';
import { checkSpiffeId, createCsr, createRootCa, DevCaInputError, generateKey, issueCertificate, parseCsr, signCsr, spiffeId, type Issued, type KeyType } from './proxy/tls/dev-ca.ts';

export const CERTS_USAGE = `legate certs \u2014 a development mesh CA (not for production keys)

Usage:
  legate certs ca --out DIR [--cn NAME] [--key-type rsa|ecdsa] [--days N] [--force]
      a root CA: DIR/ca.crt, DIR/ca.key (default 10 years; refuses to replace DIR/ca.key without --force)
  legate certs issue --ca DIR --out DIR --name NAME [--spiffe ID | --trust-domain TD --ns NS --sa SA]
                     [--dns a,b] [--ip a,b] [--uri a,b] [--email a,b] [--cn NAME] [--key-type rsa|ecdsa] [--days N]
      a leaf signed by DIR/ca.{crt,key}: NAME.crt (leaf only), NAME.key, NAME-chain.crt (leaf then CA); default 90 days
  legate certs csr (--key FILE | --new-key FILE [--key-type rsa|ecdsa]) --out FILE [--cn NAME] [--spiffe ID] [--dns a,b] [--ip a,b] [--uri a,b]
      a PKCS#10 request asking for those SANs (--new-key generates the key and writes it to FILE)
  legate certs sign-csr --ca DIR --csr FILE --out FILE [--days N]
      a certificate for the CSR's key, with the SANs it requests (default 90 days)

SPIFFE IDs look like spiffe://cluster.local/ns/default/sa/web. Keys are PKCS#8 PEM, written with mode 0600.
Lists (--dns, --ip, --uri, --email) take commas or repeated flags.
`;

/** A command-line mistake: exit 2. */
class UsageError extends Error {}

type Flags = Record<string, string | boolean | string[] | undefined>;
const str = { type: 'string' } as const;
const list = { type: 'string', multiple: true } as const;
const flag = { type: 'boolean' } as const;
const COMMON = { help: { type: 'boolean', short: 'h' }, 'key-type': str, days: str } as const;
const SPECS = {
  ca: { ...COMMON, out: str, cn: str, force: flag },
  issue: { ...COMMON, ca: str, out: str, name: str, cn: str, spiffe: str, 'trust-domain': str, ns: str, sa: str, dns: list, ip: list, uri: list, email: list },
  csr: { ...COMMON, key: str, 'new-key': str, out: str, cn: str, spiffe: str, dns: list, ip: list, uri: list },
  'sign-csr': { ...COMMON, ca: str, csr: str, out: str },
} as const;
type Command = keyof typeof SPECS;

export function runCerts(argv: readonly string[]): number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    (command === undefined ? process.stderr : process.stdout).write(CERTS_USAGE);
    return command === undefined ? 2 : 0;
  }
  try {
    if (!(command in SPECS)) throw new UsageError(`unknown command "${command}" (want ca, issue, csr or sign-csr)`);
    const cmd = command as Command;
    let flags: Flags;
    try {
      flags = parseFlags({ args: [...rest], options: SPECS[cmd], strict: true, allowPositionals: false }).values as Flags;
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    if (flags.help) {
      process.stdout.write(CERTS_USAGE);
      return 0;
    }
    const out = COMMANDS[cmd](flags);
    process.stdout.write(out);
    return 0;
  } catch (e) {
    const usage = e instanceof UsageError || e instanceof DevCaInputError;
    process.stderr.write(`legate certs${command && command in SPECS ? ` ${command}` : ''}: ${e instanceof Error ? e.message : String(e)}\n`);
    if (usage) process.stderr.write('run `legate certs --help` for usage\n');
    return usage ? 2 : 1;
  }
}

const COMMANDS: Record<Command, (f: Flags) => string> = {
  ca(f) {
    const dir = required(f, 'out');
    const keyFile = join(dir, 'ca.key');
    if (existsSync(keyFile) && !f.force) throw new Error(`refusing to replace ${keyFile} (certificates it signed would stop verifying); pass --force`);
    const ca = createRootCa({ commonName: text(f, 'cn'), keyType: keyType(f), days: days(f) });
    return [write(join(dir, 'ca.crt'), ca.certPem), writeKey(keyFile, ca.keyPem), describe(ca.certPem)].join('');
  },
  issue(f) {
    const dir = required(f, 'out');
    const name = required(f, 'name');
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UsageError(`--name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-' (it names files)`);
    const id = spiffeFlags(f);
    const uris = lists(f, 'uri');
    const dnsNames = lists(f, 'dns');
    const ips = lists(f, 'ip');
    const emails = lists(f, 'email');
    if (id === undefined && uris.length + dnsNames.length + ips.length + emails.length === 0) throw new UsageError('give at least one identity: --spiffe, --trust-domain/--ns/--sa, --dns, --ip, --uri or --email');
    const ca = readCa(required(f, 'ca'));
    const leaf = issueCertificate(ca, { spiffeId: id, uris, dnsNames, ips, emails, commonName: text(f, 'cn'), keyType: keyType(f), days: days(f) });
    return [
      write(join(dir, `${name}.crt`), leaf.certPem),
      writeKey(join(dir, `${name}.key`), leaf.keyPem),
      write(join(dir, `${name}-chain.crt`), leaf.certPem + ca.certPem),
      describe(leaf.certPem),
    ].join('');
  },
  csr(f) {
    const keyFile = text(f, 'key');
    const newKey = text(f, 'new-key');
    if ((keyFile === undefined) === (newKey === undefined)) throw new UsageError('give exactly one of --key FILE (an existing key) or --new-key FILE (generate one)');
    if (keyFile !== undefined && f['key-type'] !== undefined) throw new UsageError('--key-type only applies with --new-key');
    const outFile = required(f, 'out');
    const id = text(f, 'spiffe');
    const uris = [...(id === undefined ? [] : [checkSpiffeId(id)]), ...lists(f, 'uri')];
    const keyPem = newKey !== undefined ? generateKey(keyType(f)) : readFile(keyFile!, 'key');
    let csr: string;
    try {
      csr = createCsr(keyPem, { commonName: text(f, 'cn'), uris, dnsNames: lists(f, 'dns'), ips: lists(f, 'ip') });
    } catch (e) {
      if (e instanceof DevCaInputError) throw e;
      throw new Error(`${keyFile}: not a usable private key: ${e instanceof Error ? e.message : String(e)}`);
    }
    const { dnsNames, uris: asked, ips } = parseCsr(csr).sans;
    const sans = [...dnsNames.map((d) => `DNS:${d}`), ...asked.map((u) => `URI:${u}`), ...ips.map((i) => `IP:${i}`)];
    // The key is written only once the CSR is good, so a bad SAN leaves nothing behind.
    return (newKey === undefined ? '' : writeKey(newKey, keyPem)) + write(outFile, csr) + `requested SANs: ${sans.join(', ') || '(none)'}\n`;
  },
  'sign-csr'(f) {
    const csrFile = required(f, 'csr');
    const outFile = required(f, 'out');
    const lifetime = days(f);
    const ca = readCa(required(f, 'ca'));
    const csrPem = readFile(csrFile, 'CSR');
    let cert: string;
    try {
      cert = signCsr(ca, csrPem, { days: lifetime });
    } catch (e) {
      if (e instanceof DevCaInputError) throw e;
      throw new Error(`${csrFile}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return write(outFile, cert) + describe(cert);
  },
};

function text(f: Flags, name: string): string | undefined {
  const v = f[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name}: expected a value`);
  return v;
}

function required(f: Flags, name: string): string {
  const v = text(f, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

function lists(f: Flags, name: string): string[] {
  const v = f[name];
  const items = (Array.isArray(v) ? v : []).flatMap((s) => s.split(',')).map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`--${name}: empty item in list`);
  return items;
}

function keyType(f: Flags): KeyType | undefined {
  const v = text(f, 'key-type');
  if (v === undefined || v === 'rsa' || v === 'ecdsa') return v;
  throw new UsageError(`--key-type: expected rsa or ecdsa, got "${v}"`);
}

function days(f: Flags): number | undefined {
  const v = text(f, 'days');
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v)) throw new UsageError(`--days: expected a positive integer, got "${v}"`);
  return Number(v);
}

function spiffeFlags(f: Flags): string | undefined {
  const id = text(f, 'spiffe');
  const parts = [text(f, 'trust-domain'), text(f, 'ns'), text(f, 'sa')];
  const given = parts.filter((p) => p !== undefined).length;
  if (id !== undefined && given > 0) throw new UsageError('give either --spiffe or --trust-domain/--ns/--sa, not both');
  if (id !== undefined) return checkSpiffeId(id);
  if (given === 0) return undefined;
  const [td, ns, sa] = parts;
  if (td === undefined || ns === undefined || sa === undefined) throw new UsageError('--trust-domain, --ns and --sa go together');
  return spiffeId(td, ns, sa);
}

function readFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function readCa(dir: string): Issued {
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  const certPem = readFile(certFile, 'CA certificate');
  const keyPem = readFile(keyFile, 'CA key');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new Error(`${certFile}: not a PEM certificate`);
  }
  if (!cert.ca) throw new Error(`${certFile}: not a CA certificate (basicConstraints CA:FALSE or absent)`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new Error(`${keyFile}: not a readable PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error(`${keyFile}: does not match ${certFile} (${cert.subject.replace(/\n/g, ', ')})`);
  return { certPem, keyPem };
}

function write(file: string, data: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  return `wrote ${file}\n`;
}

function writeKey(file: string, pem: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, pem, { mode: 0o600 });
  chmodSync(file, 0o600); // an existing file keeps its old mode otherwise
  return `wrote ${file} (mode 0600)\n`;
}

function describe(certPem: string): string {
  const x = new X509Certificate(certPem);
  return [
    `subject: ${x.subject.replace(/\n/g, ', ')}`,
    `issuer: ${x.issuer.replace(/\n/g, ', ')}`,
    ...(x.subjectAltName ? [`SANs: ${x.subjectAltName}`] : []),
    `valid: ${x.validFromDate.toISOString()} to ${x.validToDate.toISOString()}`,
    `serial: ${x.serialNumber}`,
    '',
  ].join('\n');
}
