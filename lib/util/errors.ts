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

/**
 * A failed file-system call (EACCES, ENOSPC, EISDIR, ENOTDIR ...) as a UserError: `<what>:
 * <Node's message>`, which names the code, the reason, the call and the path; anything else
 * (a bug) is returned unchanged, to be rethrown with its stack trace.
 */
export function fileSystemFailure(error: unknown, what: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof Error && typeof code === 'string' && 'syscall' in error ? new UserError([`${what}: ${error.message}`]) : error;
}
