// Test helper: real connection redirection with iptables (nat OUTPUT, REDIRECT), as Istio's
// sidecar set-up does it, for connections to 127.0.0.1 only. The rules carry a comment naming this
// process and are deleted by the returned function. Needs root (CAP_NET_ADMIN); installs Debian's
// iptables when it is missing (debian.ts).

import { execFileSync } from 'node:child_process';
import { debianBinary } from './debian.ts';

/** The group a "sidecar" legate runs as in these tests; its own connections are never redirected (Istio: uid 1337). */
export const SIDECAR_GID = 1337;

let ready: string | undefined | null = null;

function run(cmd: string, args: readonly string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** Undefined when rules can be added here; else why not (for t.skip). Installs iptables once if needed. */
export function iptablesUnavailable(): string | undefined {
  if (ready !== null) return ready;
  if (process.getuid?.() !== 0) return (ready = 'redirecting connections needs root (iptables)');
  run(debianBinary('iptables', 'iptables'), ['-t', 'nat', '-S', 'OUTPUT']);
  return (ready = undefined);
}

/**
 * Redirects TCP connections to 127.0.0.1:<each of `ports`> to 127.0.0.1:`to`, except those made by
 * processes of group `exceptGid` (when given). Returns the function that removes the rules.
 */
export function redirectPorts(ports: readonly number[], to: number, exceptGid?: number): () => void {
  const rules = ports.map((p) => [
    '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(p),
    ...(exceptGid !== undefined ? ['-m', 'owner', '!', '--gid-owner', String(exceptGid)] : []),
    '-m', 'comment', '--comment', `legate-test-${process.pid}`,
    '-j', 'REDIRECT', '--to-ports', String(to),
  ]);
  const added: string[][] = [];
  try {
    for (const r of rules) {
      run('iptables', ['-t', 'nat', '-A', 'OUTPUT', ...r]);
      added.push(r);
    }
  } catch (e) {
    for (const r of added) run('iptables', ['-t', 'nat', '-D', 'OUTPUT', ...r]);
    throw e;
  }
  return () => {
    for (const r of added) {
      try {
        run('iptables', ['-t', 'nat', '-D', 'OUTPUT', ...r]);
      } catch {
        // Already gone.
      }
    }
  };
}
