// 32-bit string hashing for Maglev permutations, and the one 32-bit mix (fmix32).
//
// MurmurHash3 x86_32 (Austin Appleby, public domain algorithm), implemented here from its
// published description over the key's UTF-8 bytes. Chosen because it is fast in JS (only
// Math.imul, shifts and xors on 32-bit integers), has full avalanche (every input bit flips
// about half the output bits, which Maglev needs so that offset and skip of similar keys
// like "10.0.0.1:80" and "10.0.0.2:80" look independent), and is deterministic across
// platforms and Node versions. Two seeds give the two independent hashes Maglev asks for.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const utf8 = new TextEncoder();

/** murmur3's scramble of one 4-byte block before it enters the state. */
function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * murmur3's finaliser (fmix32): every input bit reaches every output bit. The one 32-bit mix
 * in xlb: murmur3 ends with it, and the datapath's flow hash (lb_mix() in bpf/include/lb.h,
 * mirrored by flowHash() in src/datapath/codecs.ts) is built from it.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of bytes with a seed; returns an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  const len = bytes.length;
  const blocks = len & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = mixBlock(h, k);
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= bytes[blocks + 2] << 16;
    // falls through
    case 2:
      k ^= bytes[blocks + 1] << 8;
    // falls through
    case 1:
      k ^= bytes[blocks];
      h ^= scramble(k);
  }
  return fmix32(h ^ len);
}

/** MurmurHash3 x86_32 of a string's UTF-8 encoding. */
export function hashString(s: string, seed: number): number {
  return murmur3(utf8.encode(s), seed);
}
