// Catches the PodmeshError a call throws, so tests can assert on its issues.
import { PodmeshError } from '../../constructs/core/errors.ts';

/** The PodmeshError `fn` throws; any other outcome fails the test. */
export function podmeshError(fn: () => unknown): PodmeshError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PodmeshError) return e;
    throw e;
  }
  throw new Error('expected a PodmeshError');
}
