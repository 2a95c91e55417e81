/**
 * Regenerates the CRD classes in imports/ from the vendored CRDs, one module per entry of
 * cdk8s.yaml's `imports` (`<module>:=vendor/crds/<module>.yaml`), so `npx cdk8s import` makes
 * the same classes offline. scripts/upstream-inputs.ts says where each module's CRDs come from.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { UserError } from '../lib/util/errors';
import { projectRoot } from '../lib/util/project';
import { crdFile, crdModules } from './upstream-inputs';

/** cdk8s.yaml's `imports`, as module → the file it is imported from (relative to the project). */
export function cdk8sImports(): Map<string, string> {
  const project = parse(readFileSync(join(projectRoot(), 'cdk8s.yaml'), 'utf8')) as { imports?: string[] };
  return new Map((project.imports ?? []).map((spec) => spec.split(':=') as [string, string]));
}

/** The entries cdk8s.yaml must list: each module of scripts/upstream-inputs.ts, from its vendored file. */
export function expectedCdk8sImports(): Map<string, string> {
  return new Map(Object.keys(crdModules()).map((module) => [module, relative(projectRoot(), crdFile(module))]));
}

export function importCrds(): void {
  const imports = cdk8sImports();
  if (!isDeepStrictEqual([...imports], [...expectedCdk8sImports()])) {
    const expected = [...expectedCdk8sImports()].map(([module, file]) => `  - ${module}:=${file}`).join('\n');
    throw new UserError([`cdk8s.yaml: imports must list the CRD modules of scripts/upstream-inputs.ts, in order:\n${expected}`]);
  }
  for (const [module, file] of imports) {
    if (!existsSync(join(projectRoot(), file))) throw new UserError([`${file}: missing; run \`npm run upgrade\` to vendor it`]);
    execFileSync(
      join(projectRoot(), 'node_modules', '.bin', 'cdk8s'),
      ['import', `${module}:=${file}`, '--language', 'typescript', '--output', 'imports', '--no-save', '--no-check-upgrade'],
      // Its progress lines would bury what `npm run upgrade` reports; its errors stay visible.
      { cwd: projectRoot(), stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
}
