// Test helper: a real server or tool from Debian's packages, installed (as root, with apt-get) when
// the machine lacks it, as the bench suite does nginx and HAProxy. Throws with the reason when it
// cannot be had.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const checked = new Map<string, string>();

function find(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  return undefined;
}

function apt(args: readonly string[]): void {
  execFileSync('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
}

/** The path of `bin`, installing Debian package `pkg` first when it is missing. */
export function debianBinary(bin: string, pkg: string): string {
  const known = checked.get(bin) ?? find(bin);
  if (known) {
    checked.set(bin, known);
    return known;
  }
  if (process.getuid?.() !== 0) throw new Error(`${bin} is not installed and installing ${pkg} needs root: apt-get install -y ${pkg}`);
  try {
    apt(['install', '-y', '-q', pkg]);
  } catch {
    apt(['update', '-q']);
    apt(['install', '-y', '-q', pkg]);
  }
  const path = find(bin);
  if (!path) throw new Error(`apt-get installed ${pkg} but ${bin} is still missing`);
  checked.set(bin, path);
  return path;
}
