/**
 * Ends each test file by removing the temporary directories its tests made (test/temp-dirs.ts).
 * A setup file runs before each test file, so this hook is registered for each; the module it
 * imports is loaded once per worker, with support.ts's tempDir.
 */
import { afterAll } from 'vitest';
import { removeTempDirs } from '../temp-dirs';

afterAll(removeTempDirs);
