/**
 * What a config file may be: the limits that keep a hostile or broken file from exhausting
 * memory, time or the stack, and values from being larger than Kubernetes can store. The
 * README's config section lists them with the same reasons (docs/adr/0021).
 */

const MiB = 1024 * 1024;

export const CONFIG_LIMITS = {
  /**
   * Bytes of the file; at most one byte more is ever read, whatever the file is (`/dev/zero`, a
   * pipe). The example is about 10 kB and each own app adds about 300 bytes: 2 MiB is some
   * 7000 apps, nine times the 800 `npm run bench` measures, and parses in about 2 s by the
   * careful parser (parse-yaml.ts; a plain one like the bench's in ~0.15 s by plain-yaml.ts).
   */
  fileBytes: 2 * MiB,
  /**
   * Nested mappings and lists, counted from the top level (aliases expanded). The schema's
   * deepest setting is about ten levels down; the YAML composer overflows Node's stack at
   * about 800 nested flow lists, which must never be reached.
   */
  depth: 64,
  /**
   * Bytes (UTF-8) of one string, key or value. Every string ends up in some Kubernetes object,
   * and none can hold more: "The data stored in a ConfigMap cannot exceed 1 MiB"
   * (kubernetes.io/docs/concepts/configuration/configmap, the same for a Secret's data), and
   * etcd refuses a request over 1.5 MiB (etcd.io/docs/v3.5/dev-guide/limit, `--max-request-bytes`).
   */
  stringBytes: 1 * MiB,
  /**
   * Keys, scalars, mappings and lists (each counts one) once every alias is replaced by what
   * its anchor holds. Without aliases a 2 MiB file holds at most about a million; aliases must
   * not multiply that (a "billion laughs" file of a few hundred bytes names 10^9 values).
   */
  expandedValues: 1_000_000,
  /** Characters of all keys and strings, aliases expanded: four times the file limit. */
  expandedCharacters: 8 * MiB,
} as const;

/** Keys that name (or lead to) an object's prototype in JavaScript: never a setting. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
