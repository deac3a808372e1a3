// HeaderMap: one HTTP header block (request or response headers, or trailers) with lowercase
// names and Envoy's pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`, `:status`),
// in insertion order. Filters and the route table read and mutate it; codecs convert at the edges.

import { isFieldValue, isToken } from './http-chars.ts';

/**
 * `name.toLowerCase()` without its allocation when `name` is already lowercase, as nearly every name
 * looked up is: V8's toLowerCase allocates a new string even when nothing changes, and header names
 * are looked up many times per request (young-generation GC work under load).
 */
export function lowerName(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c >= 128) return name.toLowerCase();
  }
  return name;
}

/** Whether a name (a regular header's: an HTTP token; a pseudo-header's: any) and a value may go on the wire. */
function wireSafe(n: string, value: string): boolean {
  return (n.charCodeAt(0) === 58 /* ':' */ || isToken(n)) && isFieldValue(value);
}

export class HeaderMap {
  /** Flat [name, value, name, value, ...] list; names are lowercase. */
  #entries: string[] = [];
  /** See `validated`. */
  #validated = true;

  static fromPairs(pairs: Iterable<readonly [string, string]>): HeaderMap {
    const h = new HeaderMap();
    for (const [k, v] of pairs) h.add(k, v);
    return h;
  }

  /** From a flat [name, value, name, value, ...] list, as parsers deliver raw headers and trailers. */
  static fromFlat(raw: readonly string[]): HeaderMap {
    const h = new HeaderMap();
    for (let i = 0; i + 1 < raw.length; i += 2) h.add(raw[i]!, raw[i + 1]!);
    return h;
  }

  /**
   * True while every entry is known to be valid on an HTTP/1.1 wire: each regular header's name an
   * HTTP token, each value only field-value characters (HTAB, SP, VCHAR, obs-text). Entries from a
   * strict parser come in through `addParsed`; `set` and `add` check what they store, so encoders
   * need not check a whole header block again unless this is false.
   */
  get validated(): boolean {
    return this.#validated;
  }

  get size(): number {
    return this.#entries.length / 2;
  }

  /** First value of a header, or undefined. */
  get(name: string): string | undefined {
    const n = lowerName(name);
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) if (e[i] === n) return e[i + 1];
    return undefined;
  }

  /** All values of a header (a header may repeat). */
  getAll(name: string): string[] {
    const n = lowerName(name);
    const out: string[] = [];
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) if (e[i] === n) out.push(e[i + 1]!);
    return out;
  }

  /**
   * Every value of a header as one, joined by `sep` (how Envoy's header map stores a repeated
   * x-forwarded-for and its other inline headers); undefined when absent. A single value is returned as is.
   */
  getJoined(name: string, sep = ','): string | undefined {
    const n = lowerName(name);
    const e = this.#entries;
    let out: string | undefined;
    for (let i = 0; i < e.length; i += 2) if (e[i] === n) out = out === undefined ? e[i + 1] : `${out}${sep}${e[i + 1]}`;
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every value of `name` with one value. */
  set(name: string, value: string): void {
    const n = lowerName(name);
    if (this.#validated && !wireSafe(n, value)) this.#validated = false;
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) {
      if (e[i] === n) {
        e[i + 1] = value;
        this.#removeFrom(n, i + 2);
        return;
      }
    }
    e.push(n, value);
  }

  /** Appends a value, keeping earlier ones. */
  add(name: string, value: string): void {
    const n = lowerName(name);
    if (this.#validated && !wireSafe(n, value)) this.#validated = false;
    this.#entries.push(n, value);
  }

  /**
   * `add` for a name and value a strict HTTP/1.1 parser (llhttp without lenient flags, or the fast
   * heads) accepted: they are valid by construction, so `validated` is kept without checking them.
   */
  addParsed(name: string, value: string): void {
    this.#entries.push(lowerName(name), value);
  }

  remove(name: string): void {
    this.#removeFrom(lowerName(name), 0);
  }

  /** Removes every header whose (lowercase) name is in `names`, in one pass. */
  removeAll(names: ReadonlySet<string>): void {
    const e = this.#entries;
    for (let i = e.length - 2; i >= 0; i -= 2) if (names.has(e[i]!)) e.splice(i, 2);
  }

  #removeFrom(n: string, start: number): void {
    const e = this.#entries;
    for (let i = e.length - 2; i >= start; i -= 2) if (e[i] === n) e.splice(i, 2);
  }

  /** Whether any header's (lowercase) name starts with `prefix`: one pass, for code that reads several such headers. */
  hasPrefix(prefix: string): boolean {
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) if (e[i]!.startsWith(prefix)) return true;
    return false;
  }

  /** Removes headers whose names start with a prefix (e.g. `x-envoy-`). */
  removePrefix(prefix: string): void {
    const e = this.#entries;
    for (let i = e.length - 2; i >= 0; i -= 2) if (e[i]!.startsWith(prefix)) e.splice(i, 2);
  }

  forEach(fn: (name: string, value: string) => void): void {
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) fn(e[i]!, e[i + 1]!);
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const e = this.#entries;
    for (let i = 0; i < e.length; i += 2) yield [e[i]!, e[i + 1]!];
  }

  /** Total bytes of names and values (for header size limits). */
  byteSize(): number {
    let n = 0;
    for (const s of this.#entries) n += s.length;
    return n;
  }

  clone(): HeaderMap {
    const h = new HeaderMap();
    h.#entries = [...this.#entries];
    h.#validated = this.#validated;
    return h;
  }

  /** Regular (non-pseudo) headers as a Node-style object; repeated headers become arrays. */
  toObject(includePseudo = false): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    this.forEach((k, v) => {
      if (!includePseudo && k.startsWith(':')) return;
      const prev = out[k];
      if (prev === undefined) out[k] = v;
      else if (Array.isArray(prev)) prev.push(v);
      else out[k] = [prev, v];
    });
    return out;
  }
}
