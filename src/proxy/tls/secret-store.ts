// Secrets by name on one worker: set by the main thread (SDS, watched files) or from the
// bootstrap's static `secrets`, watched by TLS contexts.

import type { SecretStore, TlsSecret } from './types.ts';

export class MemorySecretStore implements SecretStore {
  readonly #values = new Map<string, TlsSecret>();
  readonly #watchers = new Map<string, Set<(s: TlsSecret) => void>>();

  constructor(initial: Iterable<readonly [string, TlsSecret]> = []) {
    for (const [n, s] of initial) this.#values.set(n, s);
  }

  get(name: string): TlsSecret | undefined {
    return this.#values.get(name);
  }

  set(name: string, secret: TlsSecret): void {
    this.#values.set(name, secret);
    for (const w of this.#watchers.get(name) ?? []) w(secret);
  }

  watch(name: string, onChange: (secret: TlsSecret) => void): () => void {
    let set = this.#watchers.get(name);
    if (!set) this.#watchers.set(name, (set = new Set()));
    set.add(onChange);
    return () => void set.delete(onChange);
  }

  names(): string[] {
    return [...this.#values.keys()];
  }
}
