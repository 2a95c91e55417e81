/**
 * What a change does to the output, resource by resource: two output trees
 * (`<env>/<application>/<file>` -> YAML) compared per environment and per Argo CD
 * Application (the service's folder), with the fields that changed in each resource.
 */
import { parseAllDocuments } from 'yaml';
import type { OutputTree } from './output-tree';

export type ChangeKind = 'added' | 'removed' | 'changed';

/** One field: `spec.replicas` changed 1 -> 3, or a key added/removed with its value. */
export interface FieldChange {
  readonly path: string;
  readonly kind: ChangeKind;
  readonly before?: unknown;
  readonly after?: unknown;
}

export interface ResourceDiff {
  /** File name inside the Application's folder. */
  readonly file: string;
  /** `Kind/name`, or the file name for files that are not a resource (Helm values). */
  readonly resource: string;
  readonly kind: ChangeKind;
  /** Only for changed resources; empty when only comments or formatting differ. */
  readonly fields: readonly FieldChange[];
}

export interface ApplicationDiff {
  readonly application: string;
  /** added: the folder is new; removed: it is gone. */
  readonly kind: ChangeKind;
  readonly resources: readonly ResourceDiff[];
}

export interface EnvironmentDiff {
  readonly environment: string;
  readonly kind: ChangeKind;
  readonly applications: readonly ApplicationDiff[];
}

/** Environments, Applications and resources that differ (unchanged ones are left out), sorted by name. */
export function diffTrees(base: OutputTree, head: OutputTree): EnvironmentDiff[] {
  const environments = groupBy([...base.keys(), ...head.keys()], (path) => path.split('/')[0]);
  const result: EnvironmentDiff[] = [];
  for (const [environment, envPaths] of environments) {
    const applications: ApplicationDiff[] = [];
    for (const [application, paths] of groupBy(envPaths, (path) => path.split('/')[1])) {
      const resources = paths.flatMap((path) => {
        const diff = diffFile(path.split('/').slice(2).join('/'), base.get(path), head.get(path));
        return diff ? [diff] : [];
      });
      if (resources.length > 0) applications.push({ application, kind: overallKind(paths, base, head), resources });
    }
    if (applications.length > 0) result.push({ environment, kind: overallKind(envPaths, base, head), applications });
  }
  return result;
}

export interface ChangeCounts {
  added: number;
  removed: number;
  changed: number;
}

export function countResources(resources: readonly ResourceDiff[]): ChangeCounts {
  const counts = { added: 0, removed: 0, changed: 0 };
  for (const resource of resources) counts[resource.kind] += 1;
  return counts;
}

function overallKind(paths: readonly string[], base: OutputTree, head: OutputTree): ChangeKind {
  if (!paths.some((p) => base.has(p))) return 'added';
  if (!paths.some((p) => head.has(p))) return 'removed';
  return 'changed';
}

function diffFile(file: string, before: string | undefined, after: string | undefined): ResourceDiff | undefined {
  if (before === after) return undefined;
  const beforeValue = before === undefined ? undefined : parseResource(before);
  const afterValue = after === undefined ? undefined : parseResource(after);
  const resource = resourceName(file, afterValue ?? beforeValue);
  if (before === undefined) return { file, resource, kind: 'added', fields: [] };
  if (after === undefined) return { file, resource, kind: 'removed', fields: [] };
  return { file, resource, kind: 'changed', fields: diffValues(beforeValue, afterValue, []) };
}

/** A file's documents: the one document, or the list of them; the raw text if it is not YAML. */
function parseResource(text: string): unknown {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents) || documents.some((d) => d.errors.length > 0)) return text;
  const values = documents.map((d) => d.toJS());
  return values.length === 1 ? values[0] : values;
}

function resourceName(file: string, value: unknown): string {
  if (isMapping(value) && typeof value.kind === 'string' && isMapping(value.metadata) && typeof value.metadata.name === 'string') {
    return `${value.kind}/${value.metadata.name}`;
  }
  return file;
}

/** Field-level differences; list items are matched by their `name` when every item has a distinct one. */
export function diffValues(before: unknown, after: unknown, path: readonly string[]): FieldChange[] {
  if (isMapping(before) && isMapping(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => {
      const at = [...path, formatKey(key, path.length === 0)];
      if (!(key in before)) return [{ path: at.join(''), kind: 'added' as const, after: after[key] }];
      if (!(key in after)) return [{ path: at.join(''), kind: 'removed' as const, before: before[key] }];
      return diffValues(before[key], after[key], at);
    });
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const beforeByName = byName(before);
    const afterByName = byName(after);
    if (beforeByName && afterByName) {
      const names = [...new Set([...beforeByName.keys(), ...afterByName.keys()])];
      return names.flatMap((name) => {
        const at = [...path, `[name=${name}]`];
        if (!beforeByName.has(name)) return [{ path: at.join(''), kind: 'added' as const, after: afterByName.get(name) }];
        if (!afterByName.has(name)) return [{ path: at.join(''), kind: 'removed' as const, before: beforeByName.get(name) }];
        return diffValues(beforeByName.get(name), afterByName.get(name), at);
      });
    }
    return Array.from({ length: Math.max(before.length, after.length) }, (_, i) => {
      const at = [...path, `[${i}]`];
      if (i >= before.length) return [{ path: at.join(''), kind: 'added' as const, after: after[i] }];
      if (i >= after.length) return [{ path: at.join(''), kind: 'removed' as const, before: before[i] }];
      return diffValues(before[i], after[i], at);
    }).flat();
  }
  if (before === after) return [];
  return [{ path: path.join('') || '(document)', kind: 'changed', before, after }];
}

/** `spec`, `.replicas`, `["app.kubernetes.io/name"]`. */
function formatKey(key: string, first: boolean): string {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return first ? key : `.${key}`;
  return `[${JSON.stringify(key)}]`;
}

function byName(items: readonly unknown[]): Map<string, unknown> | undefined {
  if (items.length === 0) return new Map();
  const names = items.map((item) => (isMapping(item) && typeof item.name === 'string' ? item.name : undefined));
  if (names.some((name) => name === undefined) || new Set(names).size !== names.length) return undefined;
  return new Map(items.map((item, i) => [names[i]!, item]));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of [...new Set(items)].sort()) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(item);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
