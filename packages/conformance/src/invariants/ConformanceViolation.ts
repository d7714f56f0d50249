/** Thrown by the suite when a backend breaks the contract; lists every violation found. */
export class ConformanceViolation extends Error {
  readonly violations: readonly string[];

  constructor(context: string, violations: readonly string[]) {
    const shown = violations.slice(0, 20).map((v) => `  - ${v}`);
    if (violations.length > shown.length) shown.push(`  … and ${violations.length - shown.length} more`);
    super(`${context}:\n${shown.join('\n')}`);
    this.name = 'ConformanceViolation';
    this.violations = violations;
  }
}

/** Throw a `ConformanceViolation` if `violations` is not empty. */
export function assertNoViolations(context: string, violations: readonly string[]): void {
  if (violations.length > 0) throw new ConformanceViolation(context, violations);
}
