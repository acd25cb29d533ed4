// The private per-user cache folder (stack builds, synth's no-change records).
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The private per-user cache: `$PODMESH_CACHE_DIR`, else `<tmp>/podmesh-<uid>`, made 0700 if
 * missing and refused (an Error) when another user owns it or others may read it. Holds the stack
 * builds (one folder per stacks folder) and synth's no-change records (`synth/`).
 */
export function privateCacheRoot(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const root = process.env.PODMESH_CACHE_DIR ?? join(tmpdir(), `podmesh-${uid}`);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const st = statSync(root);
  if (typeof process.getuid === 'function' && (st.uid !== process.getuid() || (st.mode & 0o077) !== 0)) {
    throw new Error(`the stack cache ${root} is not private to this user (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); remove it, or set PODMESH_CACHE_DIR to a folder of your own`);
  }
  return root;
}
