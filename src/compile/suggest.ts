/** Near-miss suggestions for diagnostics ("did you mean `resource.owner`?"). */

/**
 * Edit distance with transpositions (optimal string alignment, so `dco` is
 * one edit from `doc`), bounded: returns `max + 1` once it is exceeded.
 */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prevPrev: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (prevPrev[j - 2] ?? 0) + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prevPrev = prev;
    prev = cur;
  }
  return prev[b.length] ?? max + 1;
}

/**
 * The closest candidate within a distance that scales with the word's length,
 * or `undefined`.
 *
 * @example
 * closest('ownr', ['owner', 'editor']) // 'owner'
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const max = word.length <= 3 ? 1 : word.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestD = max + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase(), max);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `did you mean \`x\`?` or `undefined`. */
export function didYouMean(word: string, candidates: Iterable<string>, render: (s: string) => string = (s) => s): string | undefined {
  const c = closest(word, candidates);
  return c === undefined ? undefined : `did you mean \`${render(c)}\`?`;
}
