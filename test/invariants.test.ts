/**
 * The invariants over the operator's own homelab.yaml, whatever it holds, and over the platform
 * fixture (every built-in service on; left out while it is the same config): after an edit and
 * `npm run synth`, these hold for any valid config (test/invariants.ts says what each checks),
 * the output is deterministic, the policy lint passes, and the committed k8s/ and
 * docs/platform.md and docs/disaster-recovery.md are what synth produces.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { changedFiles, readDirectoryTree, treeOf } from '../lib/output/output-tree';
import { renderPlatformDoc } from '../lib/output/platform-doc';
import { renderRecoveryDoc } from '../lib/output/recovery-doc';
import { INVARIANTS, lintViolations } from './invariants';
import { OPERATOR_CONFIG, OPERATOR_CONFIG_NAME, platformText, ROOT, Synthesized, synthesizePlatforms } from './support';

const text = readFileSync(OPERATOR_CONFIG, 'utf8');
const all: readonly Synthesized[] = synthesizePlatforms(text, BUILTIN_CATALOG, { file: OPERATOR_CONFIG_NAME });

const configs = [
  { name: "the operator's homelab.yaml", config: text },
  { name: 'the platform fixture (test/fixtures/platform.yaml)', config: platformText() },
  // The fixture starts as a copy of the shipped example: the same checks twice would test nothing more.
].filter(({ config }, index) => index === 0 || !isDeepStrictEqual(parse(config), parse(text)));

describe.each(configs)('the synthesis of $name', ({ config }) => {
  const synthesized = () => synthesizePlatforms(config, BUILTIN_CATALOG);

  it.each(INVARIANTS.map((invariant) => [invariant.name, invariant]))('%s', (_name, invariant) => {
    expect(invariant.check(synthesized())).toEqual([]);
  });

  it('passes the policy lint', () => {
    expect(lintViolations(synthesized())).toEqual([]);
  });
});

describe("the synthesis of the operator's homelab.yaml", () => {
  it('is deterministic: a second synthesis writes the same bytes', () => {
    const again = synthesizePlatforms(text, BUILTIN_CATALOG, { fresh: true, file: OPERATOR_CONFIG_NAME });
    expect(changedFiles(treeOf(all.map((s) => s.env)), treeOf(again.map((s) => s.env)))).toEqual([]);
  });

  it('is what is committed in k8s/, docs/platform.md and docs/disaster-recovery.md (run `npm run synth` after editing homelab.yaml)', () => {
    const fresh = treeOf(all.map((s) => s.env));
    expect(changedFiles(readDirectoryTree(join(ROOT, 'k8s')), fresh).map(({ path, kind }) => `${kind} k8s/${path}`)).toEqual([]);
    expect(readFileSync(join(ROOT, 'docs', 'platform.md'), 'utf8') === renderPlatformDoc(all.map((s) => s.env))).toBe(true);
    expect(readFileSync(join(ROOT, 'docs', 'disaster-recovery.md'), 'utf8') === renderRecoveryDoc(all.map((s) => s.env))).toBe(true);
  });
});
