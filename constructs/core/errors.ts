// One error style for every user-facing failure: `[construct/path] what is wrong. How to fix it.`

/** One problem found in a stack, tied to the construct (or file) it concerns. */
export interface Issue {
  /** Construct path (`ashchan-dev/auth`), or a file path for state and IO problems. */
  readonly path: string;
  /** What is wrong, the value given, the limit, and the fix. */
  readonly message: string;
}

/**
 * Every expected failure of podmesh: bad stacks, bad state, bad arguments.
 * Carries all issues found so that a user fixes them in one round.
 */
export class PodmeshError extends Error {
  public readonly issues: readonly Issue[];

  constructor(issues: readonly Issue[]) {
    super(formatIssues(issues));
    this.name = 'PodmeshError';
    this.issues = issues;
  }

  /** A single-issue error. */
  static at(path: string, message: string): PodmeshError {
    return new PodmeshError([{ path, message }]);
  }
}

/** `[path] message` lines, in the order found. */
export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => (i.path ? `[${i.path}] ${i.message}` : i.message)).join('\n');
}

/** Collects issues during a pass and throws them together at the end. */
export class IssueCollector {
  private readonly found: Issue[] = [];

  add(path: string, message: string): void {
    this.found.push({ path, message });
  }

  addAll(issues: Iterable<Issue>): void {
    for (const i of issues) this.found.push(i);
  }

  get issues(): readonly Issue[] {
    return this.found;
  }

  get empty(): boolean {
    return this.found.length === 0;
  }

  /** Throws a PodmeshError with everything collected so far, if anything was. */
  throwIfAny(): void {
    if (this.found.length > 0) throw new PodmeshError(this.found);
  }
}
