/** An input (file, spec, bytes) that cannot be used: `source` names it, `problem` says why. */
export abstract class InputError extends Error {
  abstract readonly code: string;
  readonly source: string;
  readonly problem: string;

  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = new.target.name;
    this.source = source;
    this.problem = problem;
  }
}
