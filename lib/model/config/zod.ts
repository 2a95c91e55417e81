/**
 * zod, set up for how a synth uses it: every schema is parsed a few times per run, so zod's
 * per-schema compiled parsers cost more to build than they save (measured on the example's
 * config: 75 -> 30 ms). The setting applies to schemas created after it, so every schema
 * module imports zod from here.
 */
import { z } from 'zod';

z.config({ jitless: true });

export { z };
