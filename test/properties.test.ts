/**
 * Property tests: configs generated at random (test/generators.ts) synthesize, and every
 * invariant of test/invariants.ts and the policy lint hold for them; a valid config broken in
 * one setting is refused by the real command with an `error:` line naming that setting, exit
 * status 2, and the output left exactly as it was. A failure prints the shrunk config as YAML.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { breakage, validConfig } from './generators';
import { invariantViolations, lintViolations } from './invariants';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { PLATFORM_DOC_HEADER } from '../lib/output/platform-doc';
import { GENERATED_HEADER } from '../lib/output/synthesize';
import { readTree, runMain, synthesizePlatforms, tempDir } from './support';

/** Bounded, so that the properties are part of every `npm test`; FC_RUNS=<n> explores more. */
const RUNS = Number(process.env.FC_RUNS || 8);

describe('generated configs', () => {
  it('synthesize, and every invariant and the policy lint hold', () => {
    fc.assert(
      fc.property(validConfig, ({ text }) => {
        const all = synthesizePlatforms(text, BUILTIN_CATALOG, { fresh: true });
        expect([...invariantViolations(all), ...lintViolations(all)]).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('broken in one setting, are refused at its path with exit status 2, the output untouched', () => {
    const dir = tempDir('homelab-properties-');
    const out = join(dir, 'k8s');
    const docs = join(dir, 'docs', 'platform.md');
    mkdirSync(join(out, 'lab', 'app'), { recursive: true });
    // What an earlier synth wrote (with its headers: synth replaces nothing else).
    writeFileSync(join(out, 'lab', 'app', 'service-app.yaml'), `${GENERATED_HEADER}previous output\n`);
    mkdirSync(join(dir, 'docs'), { recursive: true });
    writeFileSync(docs, `${PLATFORM_DOC_HEADER}previous diagrams\n`);
    const before = readTree(dir);
    fc.assert(
      fc.property(validConfig, breakage, ({ config }, broken) => {
        const changed = parse(stringify(config));
        broken.apply(changed);
        const file = join(dir, 'homelab.yaml');
        writeFileSync(file, stringify(changed));
        const run = runMain(['--config', file, '--out', out, '--docs', docs]);
        expect(run.status).toBe(2);
        const lines = run.stderr.trim().split('\n');
        expect(lines.filter((line) => !line.startsWith('error: ') && !line.startsWith('nothing was written'))).toEqual([]);
        expect(run.stderr).toContain(`${file}: ${broken.path}`);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        const after = readTree(dir);
        after.delete('homelab.yaml');
        expect(after).toEqual(before);
      }),
      { numRuns: RUNS },
    );
  });
});
