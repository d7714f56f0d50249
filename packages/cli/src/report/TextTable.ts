/** A plain-text table for terminal output: left-aligned text, right-aligned numbers. */
export class TextTable {
  private readonly rows: string[][] = [];

  constructor(private readonly header: readonly string[]) {}

  add(cells: ReadonlyArray<string | number>): this {
    this.rows.push(cells.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
    return this;
  }

  render(): string {
    const widths = this.header.map((h, i) => Math.max(h.length, ...this.rows.map((r) => (r[i] ?? '').length)));
    const numeric = this.header.map((_, i) => this.rows.length > 0 && this.rows.every((r) => /^[-\d.,%× ]+$/.test(r[i] ?? '')));
    const line = (cells: readonly string[]): string =>
      cells
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    return [line(this.header), widths.map((w) => '-'.repeat(w)).join('  '), ...this.rows.map(line)].join('\n');
  }
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

export function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}
