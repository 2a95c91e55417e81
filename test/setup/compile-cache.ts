/**
 * Writes what Node.js compiled so far to its compile cache (test/setup/typescript-loader.mjs)
 * after each test file: vitest ends its workers without the exit at which Node.js would write it.
 */
import nodeModule from 'node:module';
import { afterAll } from 'vitest';

/** Node.js 22.10 and later has it (the tests need 24, test/setup/typescript-loader.mjs); @types/node follows the engines' Node.js 20. */
const { flushCompileCache } = nodeModule as typeof nodeModule & { flushCompileCache(): void };

afterAll(() => flushCompileCache());
