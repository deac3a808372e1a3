// Test helper: what a worker adds to a RuntimeContext besides stats and clusters — a fresh
// process-wide SharedCounters and an empty Runtime — for tests that build filters in-process.

import { SharedCounters } from '../../src/proxy/shared-counters.ts';
import { Runtime } from '../../src/proxy/runtime.ts';
import { MemorySecretStore } from '../../src/proxy/tls/secret-store.ts';

export function testRuntime(values: Readonly<Record<string, string>> = {}): { shared: SharedCounters; runtime: Runtime; secrets: MemorySecretStore } {
  return { shared: SharedCounters.create(1024), runtime: new Runtime([{ name: 'test', values }]), secrets: new MemorySecretStore() };
}
