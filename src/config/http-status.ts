// An envoy.type.v3.HttpStatus code as decoded (the StatusCode enum's name, or its number) -> the
// number; undefined for a name the enum does not have or Empty (0).

import { lookupEnumType } from './protos.ts';

export function httpStatusCode(code: string | number | undefined): number | undefined {
  if (code === undefined) return undefined;
  const n = typeof code === 'number' ? code : lookupEnumType('envoy.type.v3.StatusCode')?.values[code];
  return n === undefined || n === 0 ? undefined : n;
}
