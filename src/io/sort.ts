// Locale-independent ordering, so output never depends on the machine's language settings.

/** Code-point order of two strings. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
