/**
 * `npm run import`: regenerates everything in imports/ from the vendored upstream inputs in
 * vendor/ (offline): CRD classes, the schemas `npm run validate` checks against, and the typed
 * Helm values. `npm run upgrade` refreshes vendor/ first, for new versions. With `--check` (CI)
 * it writes nothing and exits 1 when the schemas or the Helm value types in imports/ are not
 * what vendor/ makes: a generated-code check, like `synth --check` for k8s/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandSpec, parseCommandLine, runCommandAsync } from '../lib/tools/cli';
import { changedFiles, readDirectoryTree } from '../lib/output/output-tree';

const IMPORT_COMMAND: CommandSpec = {
  usage: 'npm run import [-- --check]',
  description:
    'Regenerates imports/ offline from the vendored upstream inputs in vendor/: the CRD classes (cdk8s.yaml lists them),\n' +
    'the JSON schemas `npm run validate` uses, and the typed Helm values in imports/helm/. After a version bump in\n' +
    'charts/versions.ts, `npm run upgrade` refreshes vendor/ and runs this. With --check, writes nothing and lists\n' +
    'what in imports/schemas and imports/helm differs from what vendor/ makes (the CRD classes come from the same\n' +
    'vendored CRDs as the schemas, so a changed CRD shows there too).',
  options: {
    check: { type: 'boolean', description: 'write nothing; exit 1 listing the generated files that differ' },
  },
  exitStatus: ['0  imports/ regenerated (or, with --check, up to date)', '1  generation failed, or with --check imports/ differs', '2  usage error, or an input missing from vendor/'],
};

/** Regenerates imports/ (a UserError when a vendored input is missing). */
export async function importAll(): Promise<void> {
  // Loaded only when needed: the generators' dependencies take seconds to load, --help should not.
  (await import('./import-crds')).importCrds();
  (await import('./import-schemas')).importSchemas();
  await (await import('./import-helm-values')).importHelmValues();
}

/** The generated files of imports/schemas and imports/helm that differ from what vendor/ makes, as `<kind> imports/<path>`. */
export async function staleImports(): Promise<string[]> {
  const { SCHEMA_DIR } = await import('../lib/tools/validate/manifest-validator');
  const { writeSchemas } = await import('./import-schemas');
  const { HELM_IMPORTS, writeHelmValueTypes } = await import('./import-helm-values');
  const dir = mkdtempSync(join(tmpdir(), 'homelab-import-check-'));
  try {
    writeSchemas(join(dir, 'schemas'));
    await writeHelmValueTypes(join(dir, 'helm'));
    return [
      ...changedFiles(readDirectoryTree(SCHEMA_DIR), readDirectoryTree(join(dir, 'schemas'))).map(({ kind, path }) => `${kind} imports/schemas/${path}`),
      ...changedFiles(readDirectoryTree(HELM_IMPORTS), readDirectoryTree(join(dir, 'helm'))).map(({ kind, path }) => `${kind} imports/helm/${path}`),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function main(argv: readonly string[]): Promise<number> {
  return runCommandAsync(async () => {
    const commandLine = parseCommandLine(IMPORT_COMMAND, argv);
    if (!commandLine) return 0;
    if (commandLine.values.check) {
      const stale = await staleImports();
      for (const line of stale) process.stdout.write(`${line}\n`);
      process.stdout.write(stale.length === 0 ? 'imports/ is what `npm run import` makes from vendor/\n' : 'imports/ is stale: run `npm run import`\n');
      return stale.length === 0 ? 0 : 1;
    }
    await importAll();
    return 0;
  });
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
