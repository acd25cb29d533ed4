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

/** The PodmeshError a promise rejects with; any other outcome fails the test. */
export async function podmeshRejection(promise: Promise<unknown>): Promise<PodmeshError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof PodmeshError) return e;
    throw e;
  }
  throw new Error('expected a PodmeshError');
}
