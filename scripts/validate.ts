/**
 * `npm run validate [-- <dir>]`: validates every YAML document under dir (default k8s) against the
 * Kubernetes (KUBERNETES_VERSION) and CRD schemas in imports/schemas, and every Helm values file
 * (`<chart>.values.yaml`, e.g. the Argo CD bootstrap values) against its chart's values
 * schema in imports/helm. Exits 1 on any error, 2 on a usage error.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CommandSpec, parseCommandLine, runCommand, usageError } from '../lib/tools/cli';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { HELM_VALUES_FILE } from '../lib/output/synthesize';
import { KUBERNETES_VERSION } from '../lib/model/kubernetes';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { recoverInterruptedWrites } from '../lib/output/atomic-replace';

export interface DirectoryReport {
  documents: number;
  files: number;
  /** `<file>: <kind>/<name>: <path>: <message>`, in file order. */
  errors: string[];
}

export function validateDirectory(dir: string): DirectoryReport {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    return { documents: 0, files: 0, errors: [`${dir}: no such directory`] };
  }
  const report: DirectoryReport = { documents: 0, files: 0, errors: [] };
  for (const file of yamlFiles(dir)) {
    report.files += 1;
    const { documents, errors } = validateFile(file);
    report.documents += documents;
    report.errors.push(...errors);
  }
  return report;
}

function validateFile(file: string): { documents: number; errors: string[] } {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  const label = (i: number) => (documents.length > 1 ? `${file} (document ${i + 1})` : file);
  // A file that holds only comments would otherwise pass without validating anything.
  if (documents.length === 0) return { documents: 0, errors: [`${file}: no YAML document`] };
  const errors = documents.flatMap((document, i) => {
    if (document.errors.length > 0) return document.errors.map((e) => `${label(i)}: ${e.message.split('\n')[0]}`);
    let value: unknown;
    try {
      // Aliases are resolved here: one without its anchor, or too many (an alias bomb), is the file's error, not a crash.
      value = document.toJS();
    } catch (error) {
      return [`${label(i)}: ${(error as Error).message.split('\n')[0]}`];
    }
    const chart = HELM_VALUES_FILE.exec(basename(file))?.[1];
    if (chart) return helmValuesErrors(chart, value).map((message) => `${label(i)}: ${message}`);
    return ManifestValidator.shared()
      .validate(value)
      .map((message) => `${label(i)}: ${message}`);
  });
  return { documents: documents.length, errors };
}

/** `.yaml`/`.yml` files under dir, recursively, sorted so the output is stable. */
function yamlFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((file) => /\.ya?ml$/.test(file))
    .sort()
    .map((file) => join(dir, file))
    .filter((path) => statSync(path).isFile());
}

export const VALIDATE_COMMAND: CommandSpec = {
  usage: 'npm run validate -- [<dir>]',
  description:
    `Validates every YAML document under <dir> (default k8s) against the Kubernetes ${KUBERNETES_VERSION.replace(/^v/, '')} and CRD schemas, and every\n` +
    '<chart>.values.yaml against its chart\'s values schema. Offline: the schemas are in imports/.',
  options: {},
  maxPositionals: 1,
  exitStatus: ['0  every document is valid', '1  invalid documents (listed on stderr)', '2  usage error'],
};

export function main(argv: readonly string[]): number {
  return runCommand(() => {
    const parsed = parseCommandLine(VALIDATE_COMMAND, argv);
    if (!parsed) return 0;
    const dir = parsed.positionals[0] ?? 'k8s';
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usageError(VALIDATE_COMMAND, `${dir}: expected a directory of YAML files (<dir>), ${existsSync(dir) ? 'received a file' : 'found nothing there'}`);
    // A synth killed while replacing the output left it to be finished first.
    recoverInterruptedWrites(dir);
    const { documents, files, errors } = validateDirectory(dir);
    for (const error of errors) console.error(error);
    console.log(`validated ${documents} documents in ${files} files: ${errors.length} errors`);
    return errors.length > 0 ? 1 : 0;
  });
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
