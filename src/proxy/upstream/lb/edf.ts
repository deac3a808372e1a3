// Earliest-deadline-first scheduler (Envoy's EdfScheduler): picks entries in proportion to their weight.
// Pure data structure; weights must be > 0 (callers filter zero weights out).

interface Entry<T> {
  deadline: number;
  order: number;
  item: T;
}

export class EdfScheduler<T> {
  #heap: Entry<T>[] = [];
  #time = 0;
  #order = 0;

  get size(): number {
    return this.#heap.length;
  }

  add(weight: number, item: T): void {
    this.#push({ deadline: this.#time + 1 / weight, order: this.#order++, item });
  }

  /** Pops the earliest entry and re-adds it with weightOf(item) (called after the pick is known). */
  pickAndAdd(weightOf: (item: T) => number): T | undefined {
    const e = this.#pop();
    if (!e) return undefined;
    this.#time = e.deadline;
    this.add(weightOf(e.item), e.item);
    return e.item;
  }

  /** The entry that pickAndAdd would return, without moving it. */
  peek(): T | undefined {
    return this.#heap[0]?.item;
  }

  #less(a: Entry<T>, b: Entry<T>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order);
  }

  #push(e: Entry<T>): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Entry<T> | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
