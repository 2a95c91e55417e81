/**
 * A mistake in the user's input (config file, command line). main.ts prints its lines and
 * exits 1 without a stack trace; anything else that is thrown is a bug and keeps its trace.
 */
export class UserError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'UserError';
  }
}
