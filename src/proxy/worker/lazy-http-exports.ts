// Keeps Node's bundled undici out of a thread that only imports node:http for its server and
// STATUS_CODES. Runs once per thread, before the first ESM import of node:http; never throws.

import { createRequire } from 'node:module';

/**
 * node:http exposes these as lazy getters that load Node's whole bundled undici (and make it
 * install a global Agent). An ESM import of node:http builds the module's facade by reading every
 * export once, so any `import ... from 'node:http'` would pay for undici: 2.3 MB of heap in a bare
 * thread, measured 1.1-1.5 MB less heap per legate thread (three with the default config).
 */
const UNDICI_EXPORTS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const;

/**
 * Builds node:http's ESM facade with the undici-backed exports hidden, then puts their lazy
 * getters back: `require('node:http').WebSocket` and the default export's `http.WebSocket` still
 * work; only the named ESM exports of these three read undefined (legate imports none of them).
 * A no-op when the facade already exists (node:http was imported before).
 */
export async function importHttpWithoutUndici(): Promise<void> {
  const http = createRequire(import.meta.url)('node:http') as Record<string, unknown>;
  const hidden: Array<[string, PropertyDescriptor]> = [];
  for (const name of UNDICI_EXPORTS) {
    const d = Object.getOwnPropertyDescriptor(http, name);
    if (!d?.get || !d.configurable) continue;
    Object.defineProperty(http, name, { value: undefined, writable: true, enumerable: d.enumerable ?? true, configurable: true });
    hidden.push([name, d]);
  }
  try {
    await import('node:http');
  } catch {
    // best effort: only memory is at stake
  } finally {
    for (const [name, d] of hidden) Object.defineProperty(http, name, d);
  }
}
