/**
 * A small block-style YAML emitter for the JSON-shaped data manifests are. The `yaml`
 * package builds a document tree first and dominated synthesis time (~60% for hundreds of
 * services); this writes text directly. Strings are plain only when YAML 1.1 and 1.2
 * parsers both read them back as the same string; otherwise they are double-quoted (JSON
 * string syntax is valid YAML) or, when multi-line, literal blocks. The tests read every
 * synthesized file of the fixture back, every key and scalar in it under YAML 1.1 too, and
 * any JSON value written by it under both (test/yaml-emitter.test.ts).
 */

export function emitYaml(value: unknown): string {
  return flattened(isCollection(value) && !isEmpty(value) ? block(value, '', '') : `${scalar(value, '')}\n`);
}

/**
 * The same string, stored in one piece. Text built by `+=` is a tree of fragments until
 * something reads it whole, and synth keeps every file until it writes them: unflattened, the
 * fragments survive and every young-generation collection copies them (measured: a synth of the
 * example ~5% faster flattened). Converting a string to a number reads it whole, flattening it.
 */
function flattened(text: string): string {
  Number(text);
  return text;
}

/**
 * A value written after a YAML tag, in flow style: `!Find [model, [field, value]]`, `!Env NAME`
 * (authentik's blueprint tags). Its value is a scalar or a list of them and lists.
 */
export class TaggedValue {
  constructor(
    /** With its `!`, e.g. `!Find`. */
    readonly tag: string,
    readonly value: unknown,
  ) {
    if (!/^![A-Za-z][A-Za-z0-9]*$/.test(tag)) throw new Error(`not a YAML tag: ${tag}`);
  }
}

type Collection = Record<string, unknown> | unknown[];

function isCollection(value: unknown): value is Collection {
  if (typeof value !== 'object' || value === null || value instanceof TaggedValue) return false;
  // Plain data only: a Date, a Map or a class instance would come out as `{}` or as its fields.
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== Array.prototype && prototype !== null) {
    throw new Error(`cannot write a ${(value as object).constructor?.name ?? 'non-plain object'} as YAML`);
  }
  return true;
}

function isEmpty(value: Collection): boolean {
  if (Array.isArray(value)) return value.length === 0;
  for (const _ in value) return false;
  return true;
}

/** A collection's lines at `indent`; the first line starts with `first` instead (after a dash). */
function block(value: Collection, indent: string, first: string): string {
  let out = '';
  let lead = first;
  if (Array.isArray(value)) {
    const nested = `${indent}  `;
    for (const item of value) {
      if (isCollection(item) && !isEmpty(item)) {
        // The first line of a nested collection goes on the dash line.
        out += block(item, nested, `${lead}- `);
      } else {
        out += `${lead}- ${scalar(item, nested)}\n`;
      }
      lead = indent;
    }
    return out;
  }
  const nested = `${indent}  `;
  for (const key in value) {
    const item = value[key];
    if (item === undefined) continue;
    const k = plainOrQuoted(key);
    if (isCollection(item) && !isEmpty(item)) {
      // Sequences under a key are indented too (the style kubectl and Helm use).
      out += `${lead}${k}:\n${block(item, nested, nested)}`;
    } else {
      out += `${lead}${k}: ${scalar(item, nested)}\n`;
    }
    lead = indent;
  }
  return out;
}

function scalar(value: unknown, indent: string): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} as YAML`);
    return String(value);
  }
  if (typeof value === 'string') return string(value, indent);
  if (value instanceof TaggedValue) return `${value.tag} ${flow(value.value)}`;
  if (Array.isArray(value)) return '[]';
  if (isCollection(value)) return '{}';
  throw new Error(`cannot write a ${typeof value} as YAML`);
}

/** A tag's value on one line: lists in brackets; strings plain where that is safe in flow style too (plainOrQuoted never leaves a bracket, brace or comma plain), else quoted. */
function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`;
  if (typeof value === 'string') return plainOrQuoted(value);
  if (typeof value === 'object' && value !== null) throw new Error('a tagged value holds scalars and lists only');
  return scalar(value, '');
}

/**
 * Plain scalars that some YAML parser would read as something other than a string. Numbers as
 * YAML 1.1 reads them (the `yaml` package): digits, fraction and exponent each optional, so that
 * `.` and `e5` are floats there (NaN).
 */
const NOT_A_STRING = /^(?:~|null|true|false|yes|no|on|off|y|n|[-+]?(?:\.inf|\.nan)|[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:e[-+]?[0-9]+)?|0x[0-9a-f_]+|0o?[0-7_]+|0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*)$/i;
/** Characters that keep a plain scalar plain: no indicators, quotes, or comment/mapping syntax. */
const PLAIN_SAFE = /^[A-Za-z0-9_./(][A-Za-z0-9_./()@%+=,;$^*!?<>[\]{}:# -]*$/;

function string(value: string, indent: string): string {
  if (value.includes('\n') && isBlockSafe(value)) return literalBlock(value, indent);
  return plainOrQuoted(value);
}

/** Decisions already taken: manifests repeat the same keys and many values. */
const written = new Map<string, string>();
const WRITTEN_LIMIT = 100_000;

/** The string as a plain scalar where every parser reads it back as that string, else double-quoted. */
function plainOrQuoted(value: string): string {
  let text = written.get(value);
  if (text !== undefined) return text;
  const plain =
    value.length > 0 &&
    PLAIN_SAFE.test(value) &&
    !NOT_A_STRING.test(value) &&
    !/[[\]{},]/.test(value) &&
    !value.includes(': ') &&
    !value.includes(' #') &&
    !value.endsWith(':') &&
    !value.endsWith(' ');
  text = plain ? value : JSON.stringify(value);
  if (written.size < WRITTEN_LIMIT) written.set(value, text);
  return text;
}

/** Literal blocks keep scripts readable; they cannot hold tabs, CRs, other control characters or trailing spaces faithfully here. */
const NOT_BLOCK_SAFE = /[\u0000-\u0008\t\u000b-\u001f\u007f]|[ ]\n|[ ]$|^\n|^ /;

function isBlockSafe(value: string): boolean {
  return !NOT_BLOCK_SAFE.test(value);
}

function literalBlock(value: string, indent: string): string {
  // Counted from the end: a regular expression anchored at the end (`\n*$`) tries every position of a long script.
  let trailing = 0;
  while (trailing < value.length && value.charCodeAt(value.length - 1 - trailing) === 10) trailing += 1;
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const body = trailing > 0 ? value.slice(0, value.length - 1) : value;
  const lines = body.split('\n').map((line) => (line.length > 0 ? `${indent}${line}` : ''));
  return `|${chomp}\n${lines.join('\n')}`;
}
