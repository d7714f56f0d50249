/**
 * A workload, trace or backend choice the command cannot use: a file that cannot be read, JSON
 * that does not parse, an operation that fails validation, a Lackey line that is not one, an
 * operation the chosen backend cannot perform. The message names the file and where in it
 * (`operations[12].gfn: …`, `trace.txt:41: …`). `hvmmu` exits 2 on it.
 */
export class WorkloadInputError extends Error {
  /** One line per problem found (the message joins them). */
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(problems.length === 1 ? `${source}: ${problems[0]}` : `${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'WorkloadInputError';
    this.problems = problems;
  }
}
