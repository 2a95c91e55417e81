/**
 * The policy linter: applies every rule to every environment of an output tree, excuses the
 * findings listed in lib/tools/lint/exceptions.ts, and reports the rest — and every exception that
 * excused nothing, so the list stays honest.
 */
import { BUILTIN_CATALOG } from '../../../charts/catalog';
import { UpstreamTarget, upstreamTargetsOf } from '../../model/catalog';
import { EXCEPTIONS_FILE, LintException, LINT_EXCEPTIONS } from './exceptions';
import type { PodSecurityLevel } from '../../model/pod-security';
import type { Environment, Finding, LintedObject, Rule, Violation } from './model';
import { resourceKey } from './model';
import { RULES } from './rules';
import { objectsOf, OutputTree } from './tree';
import { workloadsOf } from './workloads';
import { byCodeUnits } from '../../util/text-order';

const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';

export interface LintReport {
  readonly environments: number;
  readonly objects: number;
  readonly workloads: number;
  /** Findings an exception excused. */
  readonly excused: number;
  /** `<env>/<file>` (or the exceptions file), sorted. */
  readonly violations: readonly Violation[];
}

export interface LintOptions {
  /** @default RULES */
  readonly rules?: readonly Rule[];
  /** @default LINT_EXCEPTIONS */
  readonly exceptions?: readonly LintException[];
  /** @default the built-in catalog's */
  readonly upstreamTargets?: Readonly<Record<string, UpstreamTarget>>;
}

function environmentOf(name: string, objects: readonly LintedObject[], upstreamTargets: Readonly<Record<string, UpstreamTarget>>): Environment {
  const levels = new Map<string, PodSecurityLevel>();
  for (const o of objects.filter((o) => o.manifest.kind === 'Namespace')) {
    const level = o.manifest.metadata.labels?.[ENFORCE_LABEL];
    if (level === 'baseline' || level === 'privileged' || level === 'restricted') levels.set(o.manifest.metadata.name, level);
  }
  return { name, objects, workloads: workloadsOf(objects), podSecurityLevel: (namespace) => levels.get(namespace) ?? 'restricted', upstreamTargets };
}

export function lintTree(tree: OutputTree, options: LintOptions = {}): LintReport {
  return lintObjects(new Map([...tree].map(([name, files]) => [name, objectsOf(name, files)])), options);
}

/** Lints environments already read into objects (environment name -> its objects). */
export function lintObjects(environments: ReadonlyMap<string, readonly LintedObject[]>, options: LintOptions = {}): LintReport {
  const rules = options.rules ?? RULES;
  const exceptions = options.exceptions ?? LINT_EXCEPTIONS;
  const upstreamTargets = options.upstreamTargets ?? upstreamTargetsOf(BUILTIN_CATALOG);
  const used = new Set<LintException>();
  const violations: Violation[] = [];
  let excused = 0;
  let objects = 0;
  let workloads = 0;
  for (const [name, objectsOfEnvironment] of environments) {
    const env = environmentOf(name, objectsOfEnvironment, upstreamTargets);
    objects += env.objects.length;
    workloads += env.workloads.length;
    for (const rule of rules) {
      for (const finding of rule.check(env)) {
        const exception = exceptions.find((e) => excuses(e, rule.id, finding));
        if (exception) {
          used.add(exception);
          excused += 1;
        } else {
          violations.push({ location: finding.object.file, rule: rule.id, message: finding.message });
        }
      }
    }
  }
  // An exception for objects this tree does not have (a disabled service) is not stale: only
  // one that applies to an object here and excuses nothing is.
  const ruleIds = new Set(rules.map((r) => r.id));
  for (const exception of exceptions.filter((e) => !used.has(e))) {
    if (!ruleIds.has(exception.rule)) {
      violations.push({ location: EXCEPTIONS_FILE, rule: 'unused-exception', message: `${exception.rule} ${exception.resource} names no rule` });
    } else if ([...environments.values()].some((linted) => linted.some((object) => applies(exception, object)))) {
      violations.push({ location: EXCEPTIONS_FILE, rule: 'unused-exception', message: `${exception.rule} ${exception.resource} excuses no finding: remove it` });
    }
  }
  violations.sort((a, b) => byCodeUnits(a.location, b.location) || byCodeUnits(a.rule, b.rule) || byCodeUnits(a.message, b.message));
  return { environments: environments.size, objects, workloads, excused, violations };
}

function excuses(exception: LintException, rule: string, finding: Finding): boolean {
  return exception.rule === rule && applies(exception, finding.object);
}

/** Whether an exception names this object (its resource pattern and labels). */
function applies(exception: LintException, object: LintedObject): boolean {
  if (!globMatches(exception.resource, resourceKey(object))) return false;
  const labels = object.manifest.metadata.labels ?? {};
  return Object.entries(exception.labels ?? {}).every(([key, value]) => labels[key] === value);
}

/** `*` matches any characters but `/`. */
function globMatches(pattern: string, key: string): boolean {
  const regex = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${regex}$`).test(key);
}

export function formatViolation(v: Violation): string {
  return `${v.location}: ${v.rule}: ${v.message}`;
}
