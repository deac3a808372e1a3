// Which downstream HTTP/2 codec a test's connection manager gets: legate's own (src/proxy/http/h2)
// or node:http2's server (LEGATE_H2_CODEC=node). The manager reads the variable when it is created.

export const H2_CODECS = ['own codec', 'node:http2'] as const;
export type H2Codec = (typeof H2_CODECS)[number];

/** Runs `start` (which creates the connection manager) with `codec` selected, then restores the environment. */
export async function withH2Codec<T>(codec: H2Codec, start: () => Promise<T>): Promise<T> {
  const saved = process.env.LEGATE_H2_CODEC;
  if (codec === 'node:http2') process.env.LEGATE_H2_CODEC = 'node';
  else delete process.env.LEGATE_H2_CODEC;
  try {
    return await start();
  } finally {
    if (saved === undefined) delete process.env.LEGATE_H2_CODEC;
    else process.env.LEGATE_H2_CODEC = saved;
  }
}
