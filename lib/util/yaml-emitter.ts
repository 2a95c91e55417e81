/**
 * A small block-style YAML emitter for the JSON-shaped data manifests are. The `yaml`
 * package builds a document tree first and dominated synthesis time (~60% for hundreds of
 * services); this writes text directly. Strings are plain only when YAML 1.1 and 1.2
 * parsers both read them back as the same string; otherwise they are double-quoted (JSON
 * string syntax is valid YAML) or, when multi-line, literal blocks. A test round-trips
 * every synthesized file through the `yaml` parser.
 */

export function emitYaml(value: unknown): string {
  return isCollection(value) && !isEmpty(value) ? block(value, '') : `${scalar(value, '')}\n`;
}

type Collection = Record<string, unknown> | unknown[];

function isCollection(value: unknown): value is Collection {
  return typeof value === 'object' && value !== null;
}

function isEmpty(value: Collection): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
}

function block(value: Collection, indent: string): string {
  let out = '';
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isCollection(item) && !isEmpty(item)) {
        // The first line of a nested collection goes on the dash line.
        out += `${indent}- ${block(item, `${indent}  `).slice(indent.length + 2)}`;
      } else {
        out += `${indent}- ${scalar(item, `${indent}  `)}\n`;
      }
    }
    return out;
  }
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    const k = string(key, indent, false);
    if (isCollection(item) && !isEmpty(item)) {
      // Sequences under a key are indented too (the style kubectl and Helm use).
      out += `${indent}${k}:\n${block(item, `${indent}  `)}`;
    } else {
      out += `${indent}${k}: ${scalar(item, `${indent}  `)}\n`;
    }
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
  if (typeof value === 'string') return string(value, indent, true);
  if (Array.isArray(value)) return '[]';
  if (isCollection(value)) return '{}';
  throw new Error(`cannot write a ${typeof value} as YAML`);
}

/** Plain scalars that some YAML parser would read as something other than a string. */
const NOT_A_STRING = /^(?:~|null|true|false|yes|no|on|off|y|n|[-+]?(?:\.inf|\.nan)|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:e[-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:e[-+]?[0-9]+)?|0x[0-9a-f_]+|0o?[0-7_]+|0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*)$/i;
/** Characters that keep a plain scalar plain: no indicators, quotes, or comment/mapping syntax. */
const PLAIN_SAFE = /^[A-Za-z0-9_./(][A-Za-z0-9_./()@%+=,;$^*!?<>[\]{}:# -]*$/;

function string(value: string, indent: string, allowBlock: boolean): string {
  if (value.includes('\n') && allowBlock && isBlockSafe(value)) return literalBlock(value, indent);
  const plain =
    value.length > 0 &&
    PLAIN_SAFE.test(value) &&
    !NOT_A_STRING.test(value) &&
    !/[[\]{},]/.test(value) &&
    !value.includes(': ') &&
    !value.includes(' #') &&
    !value.endsWith(':') &&
    !value.endsWith(' ');
  return plain ? value : JSON.stringify(value);
}

/** Literal blocks keep scripts readable; they cannot hold tabs, CRs or trailing spaces faithfully here. */
function isBlockSafe(value: string): boolean {
  return !/[\t\r]|[ ]\n|[ ]$|^\n|^ /.test(value) && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value);
}

function literalBlock(value: string, indent: string): string {
  const trailing = /\n*$/.exec(value)![0].length;
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const body = trailing > 0 ? value.slice(0, value.length - 1) : value;
  const lines = body.split('\n').map((line) => (line.length > 0 ? `${indent}${line}` : ''));
  return `|${chomp}\n${lines.join('\n')}`;
}
