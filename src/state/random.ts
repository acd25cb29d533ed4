// Where the state folder's randomness comes from: Node's CSPRNG, or a source a test injects.
import { randomBytes } from 'node:crypto';

/** Where random bytes come from: key material, passwords, serials. Tests inject a seeded source. */
export interface RandomSource {
  /** `n` random bytes. */
  bytes(n: number): Uint8Array;
}

/** Random bytes from Node's CSPRNG. */
export const nodeRandom: RandomSource = { bytes: (n) => randomBytes(n) };
