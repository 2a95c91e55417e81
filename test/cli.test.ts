import { describe, expect, it } from 'vitest';
import { CommandSpec, countOption, UsageError } from '../lib/tools/cli';

const SPEC: CommandSpec = {
  usage: 'npm run example -- [--jobs <n>]',
  description: 'an example',
  options: { jobs: { type: 'string', description: 'threads' } },
  exitStatus: ['0  done', '2  usage error'],
};

describe('countOption', () => {
  it.each([
    ['1', 1],
    ['08', 8],
    ['12', 12],
  ])('reads %j as %d', (value, count) => {
    expect(countOption(SPEC, 'jobs', value, 'threads')).toBe(count);
  });

  it.each(['0', '00', '', '-1', '1.5', '4e2', ' 3', '3 ', '0x10', 'many'])('refuses %j, naming the option, what it counts and the value', (value) => {
    const refusal = (() => {
      try {
        return countOption(SPEC, 'jobs', value, 'threads');
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(UsageError);
    expect((refusal as UsageError).problems[0]).toBe(`--jobs: expected a whole number of threads above 0, received "${value}"`);
  });
});
