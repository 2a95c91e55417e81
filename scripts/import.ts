/**
 * `npm run import`: regenerates everything in imports/ from the upstream copies in
 * ../shared (offline): CRD classes, the schemas `npm run validate` checks against, and the
 * typed Helm values. Generation only: the build and the tests never read ../shared.
 */
import { CommandSpec, parseCommandLine, runCommandAsync } from '../lib/tools/cli';

const IMPORT_COMMAND: CommandSpec = {
  usage: 'npm run import',
  description:
    'Regenerates imports/ offline from the upstream copies in ../shared: the CRD classes (cdk8s.yaml lists them),\n' +
    'the JSON schemas `npm run validate` uses, and the typed Helm values in imports/helm/.',
  options: {},
  exitStatus: ['0  imports/ regenerated', '1  generation failed', '2  usage error'],
};

export function main(argv: readonly string[]): Promise<number> {
  return runCommandAsync(async () => {
    if (!parseCommandLine(IMPORT_COMMAND, argv)) return 0;
    try {
      // Loaded only when needed: the generators' dependencies take seconds to load, --help should not.
      (await import('./import-crds')).importCrds();
      (await import('./import-schemas')).importSchemas();
      await (await import('./import-helm-values')).importHelmValues();
      return 0;
    } catch (error) {
      console.error(error);
      return 1;
    }
  });
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
