/**
 * A mistake in the user's input (config file, command line). The scripts print its lines and
 * exit 2 without a stack trace (lib/cli.ts runCommand); anything else that is thrown is a bug
 * and keeps its trace.
 */
export class UserError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'UserError';
  }
}
