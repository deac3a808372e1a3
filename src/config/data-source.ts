// Reads an Envoy DataSource (inline_string, inline_bytes, filename, environment_variable) once, at
// config time. A missing file or variable is a config error naming the field.

import { readFileSync } from 'node:fs';
import type { DataSource__Output } from '../generated/envoy/config/core/v3/DataSource.ts';
import { fail, joinPath, ok, type Result } from './result.ts';

export function readDataSource(ds: DataSource__Output, path: string): Result<string> {
  switch (ds.specifier) {
    case 'inline_string':
      return ok(ds.inline_string ?? '');
    case 'inline_bytes':
      return ok(Buffer.from(ds.inline_bytes ?? []).toString('utf8'));
    case 'filename':
      try {
        return ok(readFileSync(ds.filename ?? '', 'utf8'));
      } catch (e) {
        return fail(joinPath(path, 'filename'), `unable to read file '${ds.filename}': ${(e as Error).message}`);
      }
    case 'environment_variable': {
      const v = process.env[ds.environment_variable ?? ''];
      if (v === undefined) return fail(joinPath(path, 'environment_variable'), `environment variable '${ds.environment_variable}' does not exist`);
      return ok(v);
    }
    default:
      return fail(path, 'DataSource specifier is required');
  }
}
