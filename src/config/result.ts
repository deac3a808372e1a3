// Result type for config parsing: a failure is data (a NACK or a startup error), never an exception.

/** One problem in a config, named by its field path (`static_resources.clusters[1].name`). */
export interface ConfigError {
  readonly path: string;
  readonly reason: string;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T; readonly warnings?: readonly string[] }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T>(path: string, reason: string): Result<T> {
  return { ok: false, errors: [{ path, reason }] };
}

export function formatErrors(errors: readonly ConfigError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.reason}` : e.reason)).join('\n');
}

/** Joins a field path: joinPath('a.b', 'c') -> 'a.b.c'; joinPath('a', '[2]') -> 'a[2]'. */
export function joinPath(base: string, part: string): string {
  if (!base) return part;
  return part.startsWith('[') ? base + part : `${base}.${part}`;
}

/** Deep-freezes a parsed config so workers and streams can share it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !ArrayBuffer.isView(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
