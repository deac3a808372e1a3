// Counts gRPC length-prefixed messages in a body that arrives in chunks of any size (Envoy's
// Grpc::FrameInspector): a message counts when its 5-byte prefix starts.

export class FrameCounter {
  count = 0;
  /** Bytes of the current prefix read (0-4), or -1 while inside a payload. */
  #prefixAt = 0;
  #length = 0;
  /** Payload bytes still to skip. */
  #remaining = 0;

  /** Reads `data`; returns how many messages started in it. */
  inspect(data: Buffer): number {
    let started = 0;
    let i = 0;
    while (i < data.length) {
      if (this.#remaining > 0) {
        const skip = Math.min(this.#remaining, data.length - i);
        this.#remaining -= skip;
        i += skip;
        continue;
      }
      if (this.#prefixAt === 0) {
        started++; // the flags byte
        this.#length = 0;
      } else this.#length = this.#length * 256 + data[i]!;
      i++;
      if (++this.#prefixAt === 5) {
        this.#prefixAt = 0;
        this.#remaining = this.#length;
      }
    }
    this.count += started;
    return started;
  }
}
