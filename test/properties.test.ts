/**
 * Property tests: configs generated at random (test/generators.ts) synthesize, and every
 * invariant of test/invariants.ts and the policy lint hold for them; a valid config broken in
 * one setting, or given a key that would reach a prototype anywhere, is refused by the real
 * command with an `error:` line naming that setting, exit status 2, and the output left exactly
 * as it was. A failure prints the shrunk config as YAML.
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
import { GENERATED_HEADER } from '../lib/output/output-guard';
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

  it('with a key named __proto__, constructor or prototype in any mapping, are refused at its path', () => {
    const dir = tempDir('homelab-properties-');
    const file = join(dir, 'homelab.yaml');
    const out = join(dir, 'k8s');
    fc.assert(
      fc.property(validConfig, fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.nat(), ({ config }, key, choice) => {
        // Through JSON: no object shared (the generator shares some, which YAML writes as aliases).
        const changed = JSON.parse(JSON.stringify(config));
        const mappings = mappingsIn(changed);
        const { path, mapping } = mappings[choice % mappings.length];
        // Defined, not assigned: assigning __proto__ would replace the object's prototype instead.
        Object.defineProperty(mapping, key, { value: { server: 'https://attacker.example.net:6443' }, enumerable: true, writable: true, configurable: true });
        writeFileSync(file, stringify(changed));
        const run = runMain(['--config', file, '--out', out]);
        expect(run.status).toBe(2);
        expect(run.stderr).toContain(`error: ${file}: ${[...path, key].join('.')}: keys named __proto__, constructor or prototype are not allowed`);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(readTree(out).size).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});

/** Every mapping in a parsed config (the top level too), with the key path that leads to it. */
function mappingsIn(root: Record<string, unknown>): { path: string[]; mapping: Record<string, unknown> }[] {
  const found: { path: string[]; mapping: Record<string, unknown> }[] = [];
  const pending: { path: string[]; value: unknown }[] = [{ path: [], value: root }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { path, value } = next;
    if (typeof value !== 'object' || value === null) continue;
    if (!Array.isArray(value)) found.push({ path, mapping: value as Record<string, unknown> });
    for (const [key, child] of Object.entries(value)) pending.push({ path: [...path, key], value: child });
  }
  return found;
}
