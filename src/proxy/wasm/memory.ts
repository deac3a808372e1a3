// Guest memory as host functions see it: bounds-checked reads and writes into the module's linear
// memory (re-read on every access, since memory.grow detaches the old buffer), and copies of host
// bytes into memory the guest allocates (proxy_on_memory_allocate, or malloc for older SDKs),
// written back through `return_*_data` / `return_*_size` pointers.

/** A pointer or length outside the guest's memory: the host call returns INVALID_MEMORY_ACCESS. */
export class MemoryAccessError extends Error {}

export type Allocator = (size: number) => number;

export class GuestMemory {
  readonly #memory: WebAssembly.Memory;
  readonly #allocate: Allocator;

  constructor(memory: WebAssembly.Memory, allocate: Allocator) {
    this.#memory = memory;
    this.#allocate = allocate;
  }

  get byteLength(): number {
    return this.#memory.buffer.byteLength;
  }

  #check(ptr: number, len: number): void {
    if (ptr < 0 || len < 0 || ptr + len > this.#memory.buffer.byteLength) throw new MemoryAccessError(`guest memory access out of bounds: [${ptr}, ${ptr + len})`);
  }

  /** A copy of `len` bytes at `ptr`. */
  bytes(ptr: number, len: number): Buffer {
    ptr >>>= 0;
    len >>>= 0;
    this.#check(ptr, len);
    return Buffer.from(new Uint8Array(this.#memory.buffer, ptr, len));
  }

  string(ptr: number, len: number): string {
    return this.bytes(ptr, len).toString('utf8');
  }

  u32(ptr: number): number {
    ptr >>>= 0;
    this.#check(ptr, 4);
    return new DataView(this.#memory.buffer).getUint32(ptr, true);
  }

  setU32(ptr: number, v: number): void {
    ptr >>>= 0;
    this.#check(ptr, 4);
    new DataView(this.#memory.buffer).setUint32(ptr, v >>> 0, true);
  }

  setU64(ptr: number, v: bigint): void {
    ptr >>>= 0;
    this.#check(ptr, 8);
    new DataView(this.#memory.buffer).setBigUint64(ptr, BigInt.asUintN(64, v), true);
  }

  write(ptr: number, data: Uint8Array): void {
    ptr >>>= 0;
    this.#check(ptr, data.length);
    new Uint8Array(this.#memory.buffer, ptr, data.length).set(data);
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
