/**
 * Kubernetes' length limits on the names and label values synth makes from the operator's names.
 * An app's name and an environment's go into longer names (`<app>-checkpoint`, the label
 * `app.kubernetes.io/instance: <job>-<environment>`); the OpenAPI schemas `npm run validate`
 * checks against carry no lengths, so an output over a limit would validate and then fail to sync
 * (the API server refuses the object). Synth refuses it instead, naming what to shorten.
 *
 * The limits (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ and
 * apimachinery's pkg/util/validation): a label value and a DNS label at most 63 characters, a DNS
 * subdomain 253. Namespaces and Services are named by DNS labels; a Job's name is a label value of
 * its pods (`batch.kubernetes.io/job-name`); a CronJob's at most 52, as its controller appends 11
 * characters to name its Jobs.
 */
import { UserError } from '../util/errors';

const LABEL_VALUE_MAX = 63;
const DNS_SUBDOMAIN_MAX = 253;
const NAME_MAX: Readonly<Record<string, number>> = { Namespace: 63, Service: 63, Job: 63, CronJob: 52 };

/** A name or label value over its limit. */
interface OverLimit {
  /** e.g. `its pods' label app.kubernetes.io/instance`. */
  readonly what: string;
  readonly value: string;
  readonly limit: number;
}

/**
 * Refuses an environment whose manifests hold a name or label value over Kubernetes' limits: one
 * problem per app whose objects they are (in its namespace, or its Namespace and Application,
 * named after it), at the app's path, and one for the others, at the environment, whose name is
 * then what is too long; each with its longest excess.
 */
export function checkNameLimits(manifests: Iterable<unknown>, apps: Iterable<string>, environment: string): void {
  const appNames = new Set(apps);
  const ownerOf = ({ metadata }: Manifest) =>
    metadata.namespace !== undefined && appNames.has(metadata.namespace) ? metadata.namespace : metadata.name !== undefined && appNames.has(metadata.name) ? metadata.name : undefined;
  const worst = new Map<string | undefined, { readonly resource: string; readonly over: OverLimit; readonly count: number }>();
  for (const manifest of manifests) {
    for (const over of overLimits(manifest as Manifest)) {
      const app = ownerOf(manifest as Manifest);
      const previous = worst.get(app);
      const count = (previous?.count ?? 0) + 1;
      const keep = previous !== undefined && excess(previous.over) >= excess(over);
      worst.set(app, keep ? { ...previous, count } : { resource: describe(manifest as Manifest), over, count });
    }
  }
  if (worst.size === 0) return;
  throw new UserError(
    [...worst].map(([app, { resource, over, count }]) => {
      const more = count > 1 ? ` (${count - 1} more over their limits)` : '';
      const where = `${over.what} of ${resource} would be "${over.value}", ${over.value.length} characters; Kubernetes takes at most ${over.limit}${more}`;
      return app !== undefined
        ? `apps.${app}: expected a name ${characters(excess(over))} shorter (or a shorter environment name than "${environment}"): ${where}`
        : `expected an environment name ${characters(excess(over))} shorter than "${environment}": ${where}`;
    }),
  );
}

const excess = (over: OverLimit) => over.value.length - over.limit;
const characters = (count: number) => `${count} character${count === 1 ? '' : 's'}`;

interface Manifest {
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: any;
}

function describe(manifest: Manifest): string {
  const { namespace, name } = manifest.metadata;
  return `${manifest.kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

/** The names and label values of a manifest over their limits: its own, its selector's and its pods'. */
function overLimits(manifest: Manifest): OverLimit[] {
  const found: OverLimit[] = [];
  const name = manifest.metadata.name;
  const nameLimit = NAME_MAX[manifest.kind] ?? DNS_SUBDOMAIN_MAX;
  if (name !== undefined && name.length > nameLimit) found.push({ what: 'the name', value: name, limit: nameLimit });
  labelsOver(manifest.metadata.labels, 'its label', found);
  const spec = manifest.spec;
  if (spec !== undefined && spec !== null && typeof spec === 'object') {
    labelsOver(spec.selector?.matchLabels, "its selector's label", found);
    labelsOver(spec.template?.metadata?.labels, "its pods' label", found);
    labelsOver(spec.jobTemplate?.spec?.template?.metadata?.labels, "its pods' label", found);
  }
  return found;
}

function labelsOver(labels: Readonly<Record<string, unknown>> | undefined, what: string, found: OverLimit[]): void {
  if (labels === undefined || labels === null || typeof labels !== 'object') return;
  for (const key in labels) {
    const value = labels[key];
    if (typeof value === 'string' && value.length > LABEL_VALUE_MAX) found.push({ what: `${what} ${key}`, value, limit: LABEL_VALUE_MAX });
  }
}
