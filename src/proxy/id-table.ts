// IdTable: values by integer id, for long-lived registries that per-request objects pass through
// (an HTTP/2 connection's streams, the Proxy-Wasm VM's contexts).
//
// Why not a Map: per-request objects added to and later deleted from a long-lived (old-generation)
// Map or Set stay alive across young-generation GCs until the next full GC, so each request's
// whole object graph is promoted. A micro-benchmark (Node 24, V8 13.6): 200,000 records of
// ~2.6 KB through an old Map, 50 at a time, promoted ~2,590 B per record (17 mark-compacts); an
// old Set the same; an array slot or a dictionary-mode object, as here, 6 B (1 mark-compact).
// (V8 replaces a Map's or Set's table when it fills with deleted entries; an old Map's new table is
// allocated old, and the replaced one keeps its entries and a link to its successor, for live
// iterators: what was in it stays reachable from the old generation until the next full GC.)
// Through legate, an HTTP/2 upstream's stream Map promoted ~3.9 KB per request (0.6 with an IdTable).
// test/proxy/id-table.test.ts measures it.

export class IdTable<T extends object> {
  /** A dictionary-mode object (integer keys, null prototype): see the module comment. */
  #o: Record<number, T> = Object.create(null) as Record<number, T>;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    return this.#o[id];
  }

  has(id: number): boolean {
    return this.#o[id] !== undefined;
  }

  set(id: number, value: T): void {
    if (this.#o[id] === undefined) this.#size++;
    this.#o[id] = value;
  }

  delete(id: number): boolean {
    if (this.#o[id] === undefined) return false;
    delete this.#o[id];
    this.#size--;
    return true;
  }

  /** The values, in ascending id order (a copy: the table may change while they are used). */
  values(): T[] {
    return Object.values(this.#o);
  }

  clear(): void {
    this.#o = Object.create(null) as Record<number, T>;
    this.#size = 0;
  }
}
