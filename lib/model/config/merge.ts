/** Plain-object check for parsed YAML: mappings are objects, sequences are arrays. */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep merge of an environment's overrides onto the base: mappings merge key by key,
 * anything else (scalars, sequences) replaces the base value, and `null` removes the key
 * (as in Helm values). Keyed maps (nodes, apps, recurring jobs) are mappings precisely so
 * that an environment can override or remove one entry.
 *
 * Only own properties are read and every key is defined as a property of its own, so that no
 * key (not even one named `__proto__`, which the parser refuses anyway) can read from or
 * replace an object's prototype.
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isMapping(base) || !isMapping(override)) return override === undefined ? base : override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else Object.defineProperty(merged, key, { value: deepMerge(ownValue(base, key), value), enumerable: true, writable: true, configurable: true });
  }
  return merged;
}

/** Whether `path` leads to a value inside `root` (the override supplies it), by own properties only. */
export function hasPath(root: unknown, path: readonly PropertyKey[]): boolean {
  let node = root;
  for (const key of path) {
    if (!isMapping(node) && !Array.isArray(node)) return false;
    if (!Object.hasOwn(node, String(key))) return false;
    node = (node as Record<string, unknown>)[String(key)];
  }
  return true;
}

function ownValue(mapping: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(mapping, key) ? mapping[key] : undefined;
}
