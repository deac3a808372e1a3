// IdTable: values by integer id, for long-lived registries that per-request objects pass through
// (an HTTP/2 connection's streams, the Proxy-Wasm VM's contexts); ObjectSet: a set of objects on
// the same footing, for registries of connections and sockets.
//
// Why not a Map: per-request objects added to and later deleted from a long-lived (old-generation)
// Map or Set stay alive across young-generation GCs until the next full GC, so each request's
// whole object graph is promoted. A micro-benchmark (Node 24, V8 13.6): 200,000 records of
// ~2.6 KB through an old Map, 50 at a time, promoted ~2,590 B per record (17 mark-compacts); an
// old Set the same; an array slot or a dictionary-mode object, as here, 6 B (1 mark-compact).
// (V8's Map and Set tables are replaced when they fill with deleted entries, and a replaced table
// keeps pointing at its successor for live iterators: once one table of the chain is old, every
// later table and every value in them is reachable from the old generation.) Through legate, an
// HTTP/2 upstream's stream Map promoted ~3.9 KB per request and a listener's connection Sets ~2.9
// KB per connection. test/proxy/id-table.test.ts measures it.

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

const OBJECT_ID = Symbol('legate.objectId');
let nextObjectId = 1;

/** An id for `o`, given the first time it is asked for (one per object, whatever sets hold it). */
function objectId(o: object): number {
  const tagged = o as { [OBJECT_ID]?: number };
  return (tagged[OBJECT_ID] ??= nextObjectId++);
}

/** A Set of objects that does not keep deleted ones alive (see the module comment). */
export class ObjectSet<T extends object> {
  readonly #t = new IdTable<T>();

  get size(): number {
    return this.#t.size;
  }

  add(o: T): this {
    this.#t.set(objectId(o), o);
    return this;
  }

  has(o: T): boolean {
    return this.#t.get(objectId(o)) === o;
  }

  delete(o: T): boolean {
    return this.#t.delete(objectId(o));
  }

  /** The objects, oldest id first (a copy: the set may change while they are used). */
  values(): T[] {
    return this.#t.values();
  }

  [Symbol.iterator](): Iterator<T> {
    return this.#t.values()[Symbol.iterator]();
  }

  clear(): void {
    this.#t.clear();
  }
}
