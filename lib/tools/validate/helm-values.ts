/**
 * Run-time check of Helm values (an Argo CD `helm.valuesObject`) against the schema that
 * scripts/import-helm-values.ts generated for the chart: imports/helm/<chartFolder>.schema.json.
 * The generated TypeScript types catch the same mistakes at compile time; this catches them in
 * values built dynamically or typed loosely.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../util/project';
import Ajv, { ErrorObject, Options, ValidateFunction } from 'ajv';
import { cachedValidator, validatorKey } from './compiled-validators';

const SCHEMA_DIR = join(projectRoot(), 'imports', 'helm');

// Generated schemas carry upstream keywords ajv does not know (`deprecated`, `errorMessage`...).
// Compiling is what costs, not validating: ajv's code optimisation and ref inlining would double
// it; the compiled code is kept (compiled-validators.ts).
const AJV_OPTIONS: Options = { strict: false, allErrors: true, inlineRefs: false, code: { optimize: false, source: true } };
let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

/** Problems with `values` for the chart in imports/helm/<chartFolder>.*, e.g. `server.ingres: unknown key`; [] if none. */
export function helmValuesErrors(chartFolder: string, values: unknown): string[] {
  const validate = validator(chartFolder);
  return validate(values) ? [] : (validate.errors ?? []).map(formatError);
}

function validator(chartFolder: string): ValidateFunction {
  let validate = validators.get(chartFolder);
  if (!validate) {
    const text = readFileSync(join(SCHEMA_DIR, `${chartFolder}.schema.json`), 'utf8');
    validate = cachedValidator(validatorKey([AJV_OPTIONS, text]), () => {
      ajv ??= new Ajv(AJV_OPTIONS);
      return { ajv, validate: ajv.compile(JSON.parse(text) as object) };
    });
    validators.set(chartFolder, validate);
  }
  return validate;
}

function formatError(error: ErrorObject): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'additionalProperties') {
    return `${[...path, (error.params as { additionalProperty: string }).additionalProperty].join('.')}: unknown key`;
  }
  return `${path.join('.') || '(root)'}: ${error.message}`;
}
