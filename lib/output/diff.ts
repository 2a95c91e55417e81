/**
 * What a change does to the output, resource by resource: two output trees
 * (`<env>/<application>/<file>` -> YAML) compared per environment and per Argo CD
 * Application (the service's folder), with the fields that changed in each resource.
 */
import { parseAllDocuments } from 'yaml';
import { changedFiles, type OutputTree } from './output-tree';
import { refusedUpdate } from './refused-updates';
import { byCodeUnits } from '../util/text-order';

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
  /** A changed resource the API server will not update in place: why, and what to do (lib/output/refused-updates.ts). */
  readonly refused?: string;
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
  // The paths that differ, found first: grouping every path of the two trees cost a diff of
  // the example with no change ~4 ms, and most diffs change a few files.
  const differing = changedFiles(base, head).map((change) => change.path);
  if (differing.length === 0) return [];
  const changedEnvironments = groupBy(differing, (path) => path.split('/')[0]);
  // The changed environments and their Applications (`<env>/<app>`) each tree holds, for their kinds: one pass over each tree.
  const heldIn = (tree: OutputTree) => {
    const held = new Set<string>();
    for (const path of tree.keys()) {
      const [environment, application] = path.split('/');
      if (changedEnvironments.has(environment)) held.add(environment).add(`${environment}/${application}`);
    }
    return held;
  };
  const [inBase, inHead] = [heldIn(base), heldIn(head)];
  const kindOf = (key: string): ChangeKind => (!inBase.has(key) ? 'added' : !inHead.has(key) ? 'removed' : 'changed');
  const result: EnvironmentDiff[] = [];
  for (const [environment, envChanges] of changedEnvironments) {
    const applications: ApplicationDiff[] = [];
    for (const [application, paths] of groupBy(envChanges, (path) => path.split('/')[1])) {
      const resources = paths.map((path) => diffFile(path.split('/').slice(2).join('/'), base.get(path), head.get(path))!);
      applications.push({ application, kind: kindOf(`${environment}/${application}`), resources });
    }
    result.push({ environment, kind: kindOf(environment), applications });
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

function diffFile(file: string, before: string | undefined, after: string | undefined): ResourceDiff | undefined {
  if (before === after) return undefined;
  const beforeValue = before === undefined ? undefined : parseResource(before);
  const afterValue = after === undefined ? undefined : parseResource(after);
  const resource = resourceName(file, afterValue ?? beforeValue);
  if (before === undefined) return { file, resource, kind: 'added', fields: [] };
  if (after === undefined) return { file, resource, kind: 'removed', fields: [] };
  const fields = diffValues(beforeValue, afterValue, []);
  const refused = refusedUpdate(beforeValue, afterValue, fields);
  return { file, resource, kind: 'changed', fields, ...(refused !== undefined && { refused }) };
}

/** A file's documents: the one document, or the list of them; the raw text if it is not YAML. */
function parseResource(text: string): unknown {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents) || documents.some((d) => d.errors.length > 0)) return text;
  const values = documents.map((d) => d.toJS());
  return values.length === 1 ? values[0] : values;
}

/** `Kind/namespace/name` (`Kind/name` for cluster-scoped objects); the file for anything else. */
function resourceName(file: string, value: unknown): string {
  if (isMapping(value) && typeof value.kind === 'string' && isMapping(value.metadata) && typeof value.metadata.name === 'string') {
    const namespace = typeof value.metadata.namespace === 'string' ? `${value.metadata.namespace}/` : '';
    return `${value.kind}/${namespace}${value.metadata.name}`;
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
    return diffLists(before, after, path);
  }
  if (before === after) return [];
  return [{ path: path.join('') || '(document)', kind: 'changed', before, after }];
}

/**
 * Lists without names: items equal on both sides are matched in order (longest common
 * subsequence), so an item inserted into a sorted list is one addition, not a shifted tail;
 * between matches, removed and added items are paired up as changes (an edited script line).
 */
function diffLists(before: readonly unknown[], after: readonly unknown[], path: readonly string[]): FieldChange[] {
  const at = (i: number) => [...path, `[${i}]`].join('');
  const changes: FieldChange[] = [];
  let i = 0;
  let j = 0;
  for (const [nextI, nextJ] of [...commonItems(before, after), [before.length, after.length]]) {
    const paired = Math.min(nextI - i, nextJ - j);
    for (let k = 0; k < paired; k++) changes.push(...diffValues(before[i + k], after[j + k], [...path, `[${j + k}]`]));
    for (let k = i + paired; k < nextI; k++) changes.push({ path: at(k), kind: 'removed', before: before[k] });
    for (let k = j + paired; k < nextJ; k++) changes.push({ path: at(k), kind: 'added', after: after[k] });
    [i, j] = [nextI + 1, nextJ + 1];
  }
  return changes;
}

/** Index pairs of a longest common subsequence of equal items (by index for very long lists). */
function commonItems(before: readonly unknown[], after: readonly unknown[]): [number, number][] {
  const a = before.map(canonical);
  const b = after.map(canonical);
  if (a.length * b.length > 1_000_000) {
    return Array.from({ length: Math.min(a.length, b.length) }, (_, k) => k).filter((k) => a[k] === b[k]).map((k) => [k, k]);
  }
  // lengths[x][y]: LCS length of a[x..] and b[y..].
  const lengths = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let x = a.length - 1; x >= 0; x--) {
    for (let y = b.length - 1; y >= 0; y--) {
      lengths[x][y] = a[x] === b[y] ? lengths[x + 1][y + 1] + 1 : Math.max(lengths[x + 1][y], lengths[x][y + 1]);
    }
  }
  const pairs: [number, number][] = [];
  for (let x = 0, y = 0; x < a.length && y < b.length; ) {
    if (a[x] === b[y]) pairs.push([x++, y++]);
    else if (lengths[x + 1][y] >= lengths[x][y + 1]) x++;
    else y++;
  }
  return pairs;
}

/** JSON with sorted keys: equal values give equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v) => (isMapping(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => byCodeUnits(x, y))) : v));
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
  return new Map([...groups].sort(([a], [b]) => byCodeUnits(a, b)));
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
