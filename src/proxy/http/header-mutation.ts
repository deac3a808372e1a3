// Envoy's HeaderParser: one level of *_headers_to_add / *_headers_to_remove compiled once (values
// through the header formatter), and the chain of levels a route applies. Bad config is a Result error.

import { ok, joinPath, type ConfigError, type Result } from '../../config/result.ts';
import { compileHeaderValueFormatter, type Formatter } from './formatter.ts';
import type { HeaderMap } from './headers.ts';
import type { StreamInfo } from './stream-info.ts';
import type { HeaderMutator } from './route-types.ts';
import type { HeaderValueOption__Output } from '../../generated/envoy/config/core/v3/HeaderValueOption.ts';

type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

interface HeaderToAdd {
  readonly key: string;
  readonly formatter: Formatter;
  readonly action: AppendAction;
  readonly keepEmpty: boolean;
}

/** Pseudo-headers and Host belong to the codec and router; Envoy refuses to let route config touch them. */
function isModifiable(name: string): boolean {
  return name.length > 0 && name[0] !== ':' && name !== 'host';
}

const VALID_NAME = /^[^\0\r\n:][^\0\r\n]*$|^:[^\0\r\n]+$/;

/** One level (route, virtual host, route configuration or weighted cluster) of header mutations. */
export class HeaderParser implements HeaderMutator {
  readonly #add: readonly HeaderToAdd[];
  readonly #remove: readonly string[];

  constructor(add: readonly HeaderToAdd[], remove: readonly string[]) {
    this.#add = add;
    this.#remove = remove;
  }

  get empty(): boolean {
    return this.#add.length === 0 && this.#remove.length === 0;
  }

  /** Remove first, then evaluate every value against the headers as they were, then overwrite, then add. */
  apply(headers: HeaderMap, info: StreamInfo): void {
    for (const name of this.#remove) headers.remove(name);
    if (this.#add.length === 0) return;
    let toAdd: [string, string][] | undefined;
    let toSet: [string, string][] | undefined;
    for (const h of this.#add) {
      const value = h.formatter.constant ?? h.formatter.format(info);
      if (value === '' && !h.keepEmpty) continue;
      switch (h.action) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          (toAdd ??= []).push([h.key, value]);
          break;
        case 'ADD_IF_ABSENT':
          if (!headers.has(h.key)) (toAdd ??= []).push([h.key, value]);
          break;
        case 'OVERWRITE_IF_EXISTS':
          if (!headers.has(h.key)) break;
          (toSet ??= []).push([h.key, value]);
          break;
        case 'OVERWRITE_IF_EXISTS_OR_ADD':
          (toSet ??= []).push([h.key, value]);
          break;
      }
    }
    if (toSet) for (const [k, v] of toSet) headers.set(k, v);
    if (toAdd) for (const [k, v] of toAdd) headers.add(k, v);
  }
}

/**
 * Compiles `<prefix>_headers_to_add` / `<prefix>_headers_to_remove` of one config level.
 * `path` is the message holding them; errors name e.g. `...routes[0].request_headers_to_add[1].header.key`.
 */
export function compileHeaderParser(
  add: readonly HeaderValueOption__Output[],
  remove: readonly string[],
  path: string,
  prefix: 'request' | 'response',
): Result<HeaderParser> {
  const errors: ConfigError[] = [];
  const adds: HeaderToAdd[] = [];
  add.forEach((opt, i) => {
    const p = joinPath(path, `${prefix}_headers_to_add[${i}]`);
    const hv = opt.header;
    if (!hv) {
      errors.push({ path: joinPath(p, 'header'), reason: 'value is required' });
      return;
    }
    const key = hv.key.toLowerCase();
    if (!key || !VALID_NAME.test(key)) {
      errors.push({ path: joinPath(p, 'header.key'), reason: 'must be a valid HTTP header name' });
      return;
    }
    if (!isModifiable(key)) {
      errors.push({ path: joinPath(p, 'header.key'), reason: ':-prefixed or host headers may not be modified' });
      return;
    }
    if (hv.value !== '' && hv.raw_value.length > 0) {
      errors.push({ path: joinPath(p, 'header'), reason: 'Only one of value or raw_value can be set' });
      return;
    }
    const text = hv.value !== '' ? hv.value : hv.raw_value.toString('utf8');
    if (opt.append && opt.append_action !== 'APPEND_IF_EXISTS_OR_ADD') {
      errors.push({ path: p, reason: "Both append and append_action are set and it's not allowed" });
      return;
    }
    const action: AppendAction = opt.append ? (opt.append.value ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD') : opt.append_action;
    const f = compileHeaderValueFormatter(text, { path: joinPath(p, hv.value !== '' ? 'header.value' : 'header.raw_value') });
    if (!f.ok) {
      errors.push(...f.errors);
      return;
    }
    adds.push({ key, formatter: f.value, action, keepEmpty: opt.keep_empty_value });
  });
  const removes: string[] = [];
  remove.forEach((name, i) => {
    const key = name.toLowerCase();
    const p = joinPath(path, `${prefix}_headers_to_remove[${i}]`);
    if (!key || !VALID_NAME.test(key)) errors.push({ path: p, reason: 'must be a valid HTTP header name' });
    else if (!isModifiable(key)) errors.push({ path: p, reason: ':-prefixed or host headers may not be removed' });
    else removes.push(key);
  });
  if (errors.length > 0) return { ok: false, errors };
  return ok(new HeaderParser(adds, removes));
}

const NOOP: HeaderMutator = Object.freeze({ apply: () => {} });

/** Whether a mutator (from chainHeaderMutators) changes nothing. */
export function isNoopMutator(m: HeaderMutator): boolean {
  return m === NOOP;
}

/** Applies levels in the given order (later levels win on overwrite). Empty levels are dropped. */
export function chainHeaderMutators(levels: readonly HeaderParser[]): HeaderMutator {
  const live = levels.filter((l) => !l.empty);
  if (live.length === 0) return NOOP;
  if (live.length === 1) return live[0]!;
  return Object.freeze({
    apply(headers: HeaderMap, info: StreamInfo): void {
      for (const l of live) l.apply(headers, info);
    },
  });
}
