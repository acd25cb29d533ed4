// A large text's UTF-8 bytes in pieces, through one reused buffer: for hashing and writing the
// megabytes a synth renders (a 1,000-service compose file is 3.6 MB) without the copy of the whole
// text that Node makes otherwise. That copy is fresh memory, and on these machines a page touched
// for the first time costs about 12 µs (3 ms a MB): more than encoding and hashing it.
import { createHash, hash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

/** Characters per piece. */
const PIECE = 1 << 18;
/** The bytes of one piece (ASCII: one byte a character). */
const SCRATCH = Buffer.allocUnsafe(PIECE);

/** Texts shorter than this go whole: a piece's bookkeeping costs more than a small copy. */
export const LARGE_TEXT = 1 << 16;

/**
 * Gives `each` the UTF-8 bytes of `text` in order: in pieces of the reused buffer when the text is
 * ASCII (every character one byte, copied as it is: `Buffer.byteLength` equals the length only
 * then), whole otherwise. A piece is valid only until `each` returns.
 */
export function utf8Pieces(text: string, each: (bytes: Buffer) => void): void {
  if (text.length < LARGE_TEXT || Buffer.byteLength(text, 'utf8') !== text.length) {
    each(Buffer.from(text, 'utf8'));
    return;
  }
  for (let at = 0; at < text.length; at += PIECE) each(SCRATCH.subarray(0, SCRATCH.write(text.slice(at, at + PIECE), 0, 'latin1')));
}

/** The hex sha256 of a text's UTF-8 bytes, as `hash('sha256', text)`; a large one in pieces. */
export function textSha256(text: string): string {
  // One-shot for the thousands of small files: about half createHash's cost per call.
  if (text.length < LARGE_TEXT) return hash('sha256', text);
  const h = createHash('sha256');
  utf8Pieces(text, (bytes) => h.update(bytes));
  return h.digest('hex');
}

/** Writes `text` as UTF-8 to a new or truncated file (as `writeFileSync(path, text, { mode })`); a large one in pieces. */
export function writeTextFile(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'w', mode);
  try {
    utf8Pieces(text, (bytes) => {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    });
  } finally {
    closeSync(fd);
  }
}
