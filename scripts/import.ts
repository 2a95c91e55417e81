/**
 * `npm run import`: regenerates everything in imports/ from the upstream copies in
 * ../shared (offline): CRD classes, the schemas `npm run validate` checks against, and the
 * typed Helm values. Generation only: the build and the tests never read ../shared.
 */
import { importCrds } from './import-crds';
import { importHelmValues } from './import-helm-values';
import { importSchemas } from './import-schemas';

async function main(): Promise<void> {
  importCrds();
  importSchemas();
  await importHelmValues();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
