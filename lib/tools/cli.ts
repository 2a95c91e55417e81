/**
 * What every command-line script shares: option parsing with `--help`, one style for user
 * errors (`error: ...` lines and exit 2, no stack trace) and colours only for terminals.
 */
import { parseArgs } from 'node:util';
import { colours } from '../util/colours';
import { UserError } from '../util/errors';

/** Exit status of a mistake in the command line or the config file. */
export const USAGE_ERROR = 2;

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  /** Placeholder in the help text, e.g. `<rev>`. @default `<value>` for string options */
  readonly value?: string;
  readonly default?: string;
}

export interface CommandSpec {
  /** e.g. `npm run synth -- [options]`. */
  readonly usage: string;
  /** One or two sentences: what the command does. */
  readonly description: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Positional arguments, described in the usage line. @default none allowed */
  readonly maxPositionals?: number;
  /** Lines under `exit status:`. */
  readonly exitStatus: readonly string[];
}

export interface ParsedCommandLine {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/**
 * Parses argv against the spec. Returns undefined after printing the help for `--help`;
 * throws a UserError naming the mistake and the usage line otherwise.
 */
export function parseCommandLine(spec: CommandSpec, argv: readonly string[]): ParsedCommandLine | undefined {
  const options: Record<string, { type: 'string' | 'boolean'; default?: string; short?: string }> = Object.fromEntries([
    ...Object.entries(spec.options).map(([name, option]) => [name, { type: option.type, ...(option.default !== undefined && { default: option.default }) }]),
    ['help', { type: 'boolean', short: 'h' }],
  ]);
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: (spec.maxPositionals ?? 0) > 0 });
  } catch (error) {
    throw usageError(spec, (error as Error).message.split('\n')[0]);
  }
  if (parsed.values.help) {
    process.stdout.write(helpText(spec));
    return undefined;
  }
  if (parsed.positionals.length > (spec.maxPositionals ?? 0)) {
    throw usageError(spec, `unexpected argument "${parsed.positionals[spec.maxPositionals ?? 0]}"`);
  }
  // No option takes an empty value: `--docs ''` would name no file (and the current directory's parent by way of dirname).
  const empty = Object.entries(parsed.values).find(([, value]) => value === '');
  if (empty) throw usageError(spec, `--${empty[0]}: expected ${spec.options[empty[0]]?.value ?? 'a value'}, received ""`);
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

/** A mistake on the command line: printed like any UserError, followed by the usage line. */
export class UsageError extends UserError {
  constructor(
    problem: string,
    readonly usage: string,
  ) {
    super([problem]);
  }
}

export function usageError(spec: CommandSpec, problem: string): UsageError {
  return new UsageError(problem, `usage: ${spec.usage} (--help for the options)`);
}

/** An option's value that counts something: a whole number above 0 (`08` is 8), or a usage error naming the option and what it counts. */
export function countOption(spec: CommandSpec, option: string, value: string, counted: string): number {
  if (!/^\d+$/.test(value) || Number(value) === 0) throw usageError(spec, `--${option}: expected a whole number of ${counted} above 0, received "${value}"`);
  return Number(value);
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, help: { type: 'boolean', description: 'show this help and exit' } as OptionSpec }).map(([name, option]) => {
    const flag = option.type === 'string' ? `--${name} ${option.value ?? '<value>'}` : `--${name}`;
    const fallback = option.default !== undefined ? ` (default: ${option.default})` : '';
    return [flag, `${option.description}${fallback}`];
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    `usage: ${spec.usage}`,
    '',
    spec.description,
    '',
    'options:',
    ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`),
    '',
    'exit status:',
    ...spec.exitStatus.map((line) => `  ${line}`),
    '',
  ].join('\n');
}

/**
 * Runs a command's body: a UserError becomes its `error:` lines on stderr (then the usage
 * line for a UsageError, `afterwards` such as "nothing was written" for others) and exit status 2; anything else is a bug and keeps its
 * stack trace.
 */
export function runCommand(body: () => number, afterwards: readonly string[] = []): number {
  try {
    return body();
  } catch (error) {
    return reportUserError(error, afterwards);
  }
}

/** runCommand for a body that waits (worker threads). */
export async function runCommandAsync(body: () => Promise<number>, afterwards: readonly string[] = []): Promise<number> {
  try {
    return await body();
  } catch (error) {
    return reportUserError(error, afterwards);
  }
}

function reportUserError(error: unknown, afterwards: readonly string[]): number {
  if (!(error instanceof UserError)) throw error;
  const paint = colours(process.stderr);
  for (const problem of error.problems) process.stderr.write(`${paint.red('error:')} ${problem}\n`);
  if (error instanceof UsageError) process.stderr.write(`${error.usage}\n`);
  else for (const line of afterwards) process.stderr.write(`${line}\n`);
  return USAGE_ERROR;
}
