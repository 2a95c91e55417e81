/**
 * A process that writes an output tree and its documents as `synth` does (prepareOutput, then
 * writeOutput), for test/crash-safety.test.ts to kill before each step of the write: the
 * synthesis that comes first in `synth` touches no file, and in a killed process it was most
 * of the time. Built into a bundle of its own by the test; usage:
 * `node write-output.cjs <job.json> <directory>`, the job's paths relative to the directory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GeneratedDocument } from '../lib/output/output-guard';
import { prepareOutput, writeOutput } from '../lib/output/writer';

/** What to write: the output directory's environments and the documents beside it. */
export interface WriteJob {
  readonly out: string;
  readonly environments: readonly { readonly environment: string; readonly files: readonly (readonly [string, string])[] }[];
  readonly documents: readonly GeneratedDocument[];
}

const [jobFile, directory] = process.argv.slice(2);
const job: WriteJob = JSON.parse(readFileSync(jobFile, 'utf8'));
const outdir = join(directory, job.out);
const documents = job.documents.map((document) => ({ ...document, path: join(directory, document.path) }));
prepareOutput(outdir, documents);
writeOutput(
  job.environments.map(({ environment, files }) => ({ environment, files: new Map(files) })),
  { outdir, partial: false, documents, unchanged: new Set() },
);
