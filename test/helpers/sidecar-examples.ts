// The README's sidecar pair (config/examples/mtls) for tests: the example files read as objects,
// with their certificate paths and socket addresses rewritten in the copy (never the files).

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export type Obj = Record<string, unknown>;

const EXAMPLES = fileURLToPath(new URL('../../config/examples/mtls/', import.meta.url));

/** `sidecar-a.yaml` or `sidecar-b.yaml`, parsed. */
export function loadExample(name: string): Obj {
  return parse(readFileSync(join(EXAMPLES, name), 'utf8')) as Obj;
}

/** Every `filename: certs/x` → `certDir/x`; every socket address's port → `port(address)`. */
export function rewriteExample(o: unknown, certDir: string, port: (a: Obj) => number): void {
  if (Array.isArray(o)) for (const x of o) rewriteExample(x, certDir, port);
  else if (o && typeof o === 'object') {
    const obj = o as Obj;
    if (typeof obj.filename === 'string' && obj.filename.startsWith('certs/')) obj.filename = join(certDir, obj.filename.slice('certs/'.length));
    if (obj.socket_address && typeof obj.socket_address === 'object') {
      const a = obj.socket_address as Obj;
      a.port_value = port(a);
    }
    for (const v of Object.values(obj)) rewriteExample(v, certDir, port);
  }
}

/** Listens on 127.0.0.1, a free port; resolves with the port. */
export async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}
