// Invalid input to a doctor check: exit code 2, with the file, the line and what was expected.

export class DoctorInputError extends Error {
  override readonly name = "DoctorInputError";
  /** 1-based line of the input where the problem is, when there is one. */
  readonly line: number | undefined;
  readonly expected: string | undefined;

  constructor(message: string, options: { line?: number; expected?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.line = options.line;
    this.expected = options.expected;
  }
}
