/**
 * `npm run import`: regenerates everything in imports/ from the vendored upstream inputs in
 * vendor/ (offline): CRD classes, the schemas `npm run validate` checks against, and the typed
 * Helm values. `npm run upgrade` refreshes vendor/ first, for new versions.
 */
import { CommandSpec, parseCommandLine, runCommandAsync } from '../lib/tools/cli';

const IMPORT_COMMAND: CommandSpec = {
  usage: 'npm run import',
  description:
    'Regenerates imports/ offline from the vendored upstream inputs in vendor/: the CRD classes (cdk8s.yaml lists them),\n' +
    'the JSON schemas `npm run validate` uses, and the typed Helm values in imports/helm/. After a version bump in\n' +
    'charts/versions.ts, `npm run upgrade` refreshes vendor/ and runs this.',
  options: {},
  exitStatus: ['0  imports/ regenerated', '1  generation failed', '2  usage error, or an input missing from vendor/'],
};

/** Regenerates imports/ (a UserError when a vendored input is missing). */
export async function importAll(): Promise<void> {
  // Loaded only when needed: the generators' dependencies take seconds to load, --help should not.
  (await import('./import-crds')).importCrds();
  (await import('./import-schemas')).importSchemas();
  await (await import('./import-helm-values')).importHelmValues();
}

export function main(argv: readonly string[]): Promise<number> {
  return runCommandAsync(async () => {
    if (!parseCommandLine(IMPORT_COMMAND, argv)) return 0;
    await importAll();
    return 0;
  });
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
