// Guest memory as host functions see it: bounds-checked reads and writes into the module's linear
// memory (its views re-made when memory.grow has replaced the buffer), and copies of host
// bytes into memory the guest allocates (proxy_on_memory_allocate, or malloc for older SDKs),
// written back through `return_*_data` / `return_*_size` pointers.

/** A pointer or length outside the guest's memory: the host call returns INVALID_MEMORY_ACCESS. */
export class MemoryAccessError extends Error {}

export type Allocator = (size: number) => number;

export class GuestMemory {
  readonly #memory: WebAssembly.Memory;
  readonly #allocate: Allocator;
  /** Views of the memory's current buffer (memory.grow detaches it and gives a new one). */
  #buffer: ArrayBuffer | undefined;
  #bytes: Buffer = Buffer.alloc(0);
  #view: DataView = new DataView(new ArrayBuffer(0));

  constructor(memory: WebAssembly.Memory, allocate: Allocator) {
    this.#memory = memory;
    this.#allocate = allocate;
  }

  get byteLength(): number {
    return this.#memory.buffer.byteLength;
  }

  /** The views, re-made when the guest grew its memory since the last access. */
  #current(): Buffer {
    const b = this.#memory.buffer;
    if (b !== this.#buffer) {
      this.#buffer = b;
      this.#bytes = Buffer.from(b);
      this.#view = new DataView(b);
    }
    return this.#bytes;
  }

  #check(ptr: number, len: number): Buffer {
    const bytes = this.#current();
    if (ptr < 0 || len < 0 || ptr + len > bytes.length) throw new MemoryAccessError(`guest memory access out of bounds: [${ptr}, ${ptr + len})`);
    return bytes;
  }

  /** A copy of `len` bytes at `ptr`. */
  bytes(ptr: number, len: number): Buffer {
    ptr >>>= 0;
    len >>>= 0;
    return Buffer.from(this.#check(ptr, len).subarray(ptr, ptr + len));
  }

  /** The UTF-8 string at `ptr` (decoded in place, no intermediate copy). */
  string(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    return this.#check(ptr, len).toString('utf8', ptr, ptr + len);
  }

  u32(ptr: number): number {
    ptr >>>= 0;
    this.#check(ptr, 4);
    return this.#view.getUint32(ptr, true);
  }

  setU32(ptr: number, v: number): void {
    ptr >>>= 0;
    this.#check(ptr, 4);
    this.#view.setUint32(ptr, v >>> 0, true);
  }

  setU64(ptr: number, v: bigint): void {
    ptr >>>= 0;
    this.#check(ptr, 8);
    this.#view.setBigUint64(ptr, BigInt.asUintN(64, v), true);
  }

  write(ptr: number, data: Uint8Array): void {
    ptr >>>= 0;
    this.#check(ptr, data.length).set(data, ptr);
  }

  /**
   * Copies `data` into a fresh guest allocation and writes its address and size to the two
   * return pointers (the `return_value_data`, `return_value_size` pattern). Empty data writes
   * address 0 and size 0 without allocating.
   */
  returnBytes(data: Uint8Array, ptrOut: number, sizeOut: number): void {
    let addr = 0;
    if (data.length > 0) {
      addr = this.#allocate(data.length) >>> 0;
      if (addr === 0) throw new MemoryAccessError('the plugin could not allocate memory');
      this.write(addr, data);
    }
    this.setU32(ptrOut, addr);
    this.setU32(sizeOut, data.length);
  }
}
