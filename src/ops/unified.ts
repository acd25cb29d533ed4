// Unified line diffs (`diff -u` style) from a longest-common-subsequence table; no dependency.

/** One line of an edit script: kept (' '), removed ('-') or added ('+'). */
interface Edit {
  readonly op: ' ' | '-' | '+';
  readonly text: string;
  /** 1-based line numbers in the old and new text (the position before, for added/removed lines). */
  readonly a: number;
  readonly b: number;
}

/** Above this many table cells the two versions are shown as one replaced block instead. */
const MAX_CELLS = 16_000_000;

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Edit script from `a` to `b`: common prefix and suffix trimmed, LCS over the middle. */
function editScript(a: readonly string[], b: readonly string[]): Edit[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const x = a.slice(pre, a.length - suf);
  const y = b.slice(pre, b.length - suf);
  const n = x.length;
  const m = y.length;
  const middle: ('=' | '-' | '+')[] = [];
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    middle.push(...x.map(() => '-' as const), ...y.map(() => '+' as const));
  } else {
    // lcs[i][j]: length of the LCS of x[i..] and y[j..], one flat array.
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) (middle.push('='), i++, j++);
      else if (j < m && (i === n || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!)) (middle.push('+'), j++);
      else (middle.push('-'), i++);
    }
    // Removals before additions inside a changed block, as diff -u prints them.
  }
  const edits: Edit[] = [];
  let ia = 0;
  let ib = 0;
  const keep = (text: string) => edits.push({ op: ' ', text, a: ++ia, b: ++ib });
  for (let k = 0; k < pre; k++) keep(a[k]!);
  let xi = 0;
  let yi = 0;
  let block: { del: string[]; add: string[] } = { del: [], add: [] };
  const flush = () => {
    for (const t of block.del) edits.push({ op: '-', text: t, a: ++ia, b: ib });
    for (const t of block.add) edits.push({ op: '+', text: t, a: ia, b: ++ib });
    block = { del: [], add: [] };
  };
  for (const op of middle) {
    if (op === '=') (flush(), keep(x[xi++]!), yi++);
    else if (op === '-') block.del.push(x[xi++]!);
    else block.add.push(y[yi++]!);
  }
  flush();
  for (let k = a.length - suf; k < a.length; k++) keep(a[k]!);
  return edits;
}

/** Options of {@link unifiedDiff}. */
export interface UnifiedDiffOptions {
  /** Unchanged lines shown around each change. @default 3 */
  readonly context?: number;
  /** ANSI colors (red removals, green additions, cyan hunk headers). @default false */
  readonly color?: boolean;
}

/**
 * `diff -u` of two texts with `---`/`+++` headers naming `oldName` and `newName` (`/dev/null`
 * for a missing side); '' when the texts are equal.
 */
export function unifiedDiff(oldText: string, newText: string, oldName: string, newName: string, options: UnifiedDiffOptions = {}): string {
  if (oldText === newText) return '';
  const context = options.context ?? 3;
  const paint = (code: string, s: string) => (options.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const edits = editScript(splitLines(oldText), splitLines(newText));
  const out = [paint('1', `--- ${oldName}`), paint('1', `+++ ${newName}`)];
  const changedAt = edits.flatMap((e, i) => (e.op === ' ' ? [] : [i]));
  let k = 0;
  while (k < changedAt.length) {
    // A hunk spans changes closer than 2*context lines to each other.
    let last = k;
    while (last + 1 < changedAt.length && changedAt[last + 1]! - changedAt[last]! <= 2 * context + 1) last++;
    const from = Math.max(0, changedAt[k]! - context);
    const to = Math.min(edits.length - 1, changedAt[last]! + context);
    const hunk = edits.slice(from, to + 1);
    const oldLines = hunk.filter((e) => e.op !== '+').length;
    const newLines = hunk.filter((e) => e.op !== '-').length;
    const first = hunk[0]!;
    // diff -u numbers an empty side by the line before it.
    const oldStart = oldLines === 0 ? first.a : first.op === '+' ? first.a + 1 : first.a;
    const newStart = newLines === 0 ? first.b : first.op === '-' ? first.b + 1 : first.b;
    out.push(paint('36', `@@ -${oldStart},${oldLines} +${newStart},${newLines} @@`));
    for (const e of hunk) out.push(e.op === '-' ? paint('31', `-${e.text}`) : e.op === '+' ? paint('32', `+${e.text}`) : ` ${e.text}`);
    k = last + 1;
  }
  const noEol = (t: string, side: string) => (t !== '' && !t.endsWith('\n') ? [`\\ No newline at end of file (${side})`] : []);
  out.push(...noEol(oldText, 'old'), ...noEol(newText, 'new'));
  return `${out.join('\n')}\n`;
}
