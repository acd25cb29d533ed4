// Large texts hashed and written in pieces (src/io/text-bytes.ts): the same bytes, hash and file as
// the whole text through Node, ASCII or not, on either side of the size where pieces start.
import fc from 'fast-check';
import { hash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LARGE_TEXT, textSha256, utf8Pieces, writeTextFile } from '../../src/io/text-bytes.ts';

const dir = mkdtempSync(join(tmpdir(), 'podmesh-text-bytes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A text of about `size` characters made of `unit` repeated, and as a rope (built by appending, as the renderers build theirs). */
function texts(unit: string, size: number): string[] {
  const whole = unit.repeat(Math.max(1, Math.ceil(size / Math.max(1, unit.length)))).slice(0, size);
  let rope = '';
  for (let at = 0; at < whole.length; at += 997) rope += whole.slice(at, at + 997);
  return [whole, rope];
}

describe('texts in pieces', () => {
  it('property: pieces, hash and file are those of the whole text', () => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })),
        fc.constantFrom(0, 1, 100, LARGE_TEXT - 1, LARGE_TEXT, LARGE_TEXT + 1, 3 * (1 << 18) + 5),
        (unit, size) => {
          for (const text of texts(unit, size)) {
            const expected = Buffer.from(text, 'utf8');
            const parts: Buffer[] = [];
            utf8Pieces(text, (b) => void parts.push(Buffer.from(b)));
            expect(Buffer.concat(parts).equals(expected)).toBe(true);
            expect(textSha256(text)).toBe(hash('sha256', text));
            const file = join(dir, `f${n++}`);
            writeFileSync(file, 'previous, longer content that must go '.repeat(50));
            writeTextFile(file, text, 0o644);
            expect(readFileSync(file).equals(expected)).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a new file gets the mode asked for (under the umask, as writeFileSync)', () => {
    const file = join(dir, 'mode');
    writeTextFile(file, 'x'.repeat(LARGE_TEXT * 2), 0o640);
    expect(statSync(file).mode & 0o777).toBe(0o640 & ~process.umask());
  });
});
