/**
 * homelab.yaml -> one validated config per environment. All problems are collected and
 * reported at once as `path: expected ..., received ...` lines in a UserError.
 */
import { z } from './zod';
import { UserError } from '../../util/errors';
import { deepMerge, hasPath, isMapping } from './merge';
import { CONFIG_LIMITS } from './limits';
import { parseConfigYaml } from './parse-yaml';
import { readConfigText } from './read-file';
import { resolveConfigFiles } from './config-files';
import type { Catalog } from '../catalog';
import { EnvironmentConfig, environmentName, environmentSchema } from './environment';


export interface HomelabConfig {
  /** Validated, merged settings per environment, in the order the file lists them. */
  readonly environments: ReadonlyMap<string, EnvironmentConfig>;
}

export function loadConfigFile(file: string, catalog: Catalog): HomelabConfig {
  return parseConfig(readConfigText(file, CONFIG_LIMITS.fileBytes), file, catalog);
}

export function parseConfig(text: string, file: string, catalog: Catalog): HomelabConfig {
  const schema = environmentSchema(catalog);
  const raw = parseYaml(text, file);
  const { environments: rawEnvironments, ...base } = raw;
  if (!isMapping(rawEnvironments) || Object.keys(rawEnvironments).length === 0) {
    throw new UserError([
      `${file}: environments: expected a mapping of at least one environment (e.g. dev, staging, prod), received ${describe(rawEnvironments)}`,
    ]);
  }

  const problems: string[] = [];
  /** Problems at base paths, with the environments they arise in. */
  const baseProblems = new Map<string, string[]>();
  const environments = new Map<string, EnvironmentConfig>();
  for (const [name, overrides] of Object.entries(rawEnvironments)) {
    const nameCheck = environmentName.safeParse(name);
    if (!nameCheck.success) {
      problems.push(`environments.${name}: ${nameCheck.error.issues[0].message} (environment names become folder and resource names)`);
      continue;
    }
    if (overrides !== null && !isMapping(overrides)) {
      problems.push(`environments.${name}: expected a mapping of overrides, received ${describe(overrides)}`);
      continue;
    }
    const result = schema.safeParse(deepMerge(base, overrides ?? {}), { reportInput: true });
    if (result.success) {
      environments.set(name, result.data);
    } else {
      for (const issue of result.error.issues) {
        for (const problem of formatIssue(schema, issue, name, base, overrides)) {
          if (problem.startsWith('environments.')) problems.push(problem);
          else baseProblems.set(problem, [...(baseProblems.get(problem) ?? []), name]);
        }
      }
    }
  }
  // A base value that is wrong only in some environments (e.g. GPUs where there is no GPU
  // node) says which ones.
  const all = Object.keys(rawEnvironments).length;
  for (const [problem, envs] of baseProblems) problems.push(envs.length === all ? problem : `${problem} (in ${envs.join(', ')})`);
  // Files next to the config file that the settings name (an app's configuration files).
  for (const config of environments.values()) problems.push(...resolveConfigFiles(config, file));
  if (problems.length > 0) throw new UserError(unique(problems).map((p) => `${file}: ${p}`));
  return { environments };
}

function parseYaml(text: string, file: string): Record<string, unknown> {
  const value = parseConfigYaml(text, file);
  if (value === null || value === undefined) throw new UserError([`${file}: the config file is empty`]);
  if (!isMapping(value)) throw new UserError([`${file}: expected a mapping at the top level, received ${describe(value)}`]);
  return value;
}

/** Report a problem at the environment's override when it supplied the bad value. */
function formatIssue(schema: z.ZodType, issue: z.core.$ZodIssue, env: string, base: unknown, overrides: unknown): string[] {
  const path = issue.path.map(String);
  const at = (p: string[]) => {
    const parent = p.slice(0, -1);
    const fromOverride = hasPath(overrides, p) || (parent.length > 0 && hasPath(overrides, parent) && !hasPath(base, parent));
    const where = p.length > 0 && fromOverride ? ['environments', env, ...p] : p;
    return where.length > 0 ? where.join('.') : '(top level)';
  };
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(schema, path);
    const expected = known.length > 0 ? `; expected one of ${known.join(', ')}` : '';
    return issue.keys.map((key) => `${at([...path, key])}: unknown key${expected}`);
  }
  return [`${at(path)}: ${describeIssue(issue)}`];
}

/** The keys the schema allows at `path`, to tell the user what a typo should have been. */
function knownKeys(schema: z.core.$ZodType, path: readonly string[]): string[] {
  let node: z.core.$ZodType | undefined = schema;
  for (const key of [...path, undefined]) {
    while (node && 'innerType' in node._zod.def) node = node._zod.def.innerType as z.core.$ZodType;
    if (!node) return [];
    const def = node._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; valueType?: z.core.$ZodType; element?: z.core.$ZodType };
    if (key === undefined) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    node = def.type === 'object' ? def.shape?.[key] : def.type === 'record' ? def.valueType : def.type === 'array' ? def.element : undefined;
  }
  return [];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = issue.message.startsWith('expected') ? issue.message : `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
      return issue.input === undefined ? `${expected}, but it is missing` : `${expected}, received ${describe(issue.input)}`;
    }
    case 'custom':
      return issue.message;
    case 'invalid_key':
      return `${withExpected(issue.issues[0]?.message ?? 'a valid key')}, received ${describe(issue.input)}`;
    default:
      return 'input' in issue && issue.input !== undefined
        ? `${withExpected(issue.message)}, received ${describe(issue.input)}`
        : withExpected(issue.message);
  }
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function withExpected(message: string): string {
  return message.startsWith('expected') ? message : `expected ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isMapping(value)) return 'a mapping';
  return JSON.stringify(value);
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}
