/** Plain-object check for parsed YAML: mappings are objects, sequences are arrays. */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep merge of an environment's overrides onto the base: mappings merge key by key,
 * anything else (scalars, sequences) replaces the base value, and `null` removes the key
 * (as in Helm values). Keyed maps (nodes, apps, recurring jobs) are mappings precisely so
 * that an environment can override or remove one entry.
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isMapping(base) || !isMapping(override)) return override === undefined ? base : override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else merged[key] = deepMerge(base[key], value);
  }
  return merged;
}

/** Whether `path` leads to a value inside `root` (the override supplies it). */
export function hasPath(root: unknown, path: readonly PropertyKey[]): boolean {
  let node = root;
  for (const key of path) {
    if (!isMapping(node) && !Array.isArray(node)) return false;
    if (!(String(key) in node)) return false;
    node = (node as Record<string, unknown>)[String(key)];
  }
  return true;
}
