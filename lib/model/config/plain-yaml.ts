/**
 * The fast way to read a config: js-yaml, several times faster than the `yaml` package
 * parse-yaml.ts is built on (0.05 s against 0.35 s for 800 own apps, read before any thread
 * can start), taken only where both must give the same value: plain YAML 1.2 in one document, with
 * no directive, tag, anchor or alias, and within every limit of limits.ts. Anything else, and
 * anything js-yaml refuses, is left to the careful parser (undefined here), which reads it as
 * before and reports each problem at its place; so this never decides what a config means nor
 * what is wrong with it. test/config-yaml.test.ts holds both parsers to the same value on
 * generated texts and on mutations of valid configs.
 */
import { FAILSAFE_SCHEMA, load, type LoadOptions, Type } from 'js-yaml';
import { CONFIG_LIMITS, FORBIDDEN_KEYS } from './limits';

/**
 * The `yaml` package's YAML 1.2 core schema (yaml 2.9 dist/schema/core and common/null): the
 * same patterns and the same conversions, so a plain scalar means what it means there.
 */
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
const CORE_SCALARS = [NULL, BOOL, INT_OCT, INT, INT_HEX, FLOAT_NAN, FLOAT_EXP, FLOAT];

const CORE_1_2 = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type('tag:yaml.org,2002:null', { kind: 'scalar', resolve: (s: string) => NULL.test(s), construct: () => null }),
    new Type('tag:yaml.org,2002:bool', { kind: 'scalar', resolve: (s: string) => BOOL.test(s), construct: (s: string) => s[0] === 't' || s[0] === 'T' }),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => INT_OCT.test(s) || INT.test(s) || INT_HEX.test(s),
      construct: (s: string) => (INT_OCT.test(s) ? parseInt(s.substring(2), 8) : INT_HEX.test(s) ? parseInt(s.substring(2), 16) : parseInt(s, 10)),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => FLOAT_NAN.test(s) || FLOAT_EXP.test(s) || FLOAT.test(s),
      construct: (s: string) => (FLOAT_NAN.test(s) ? (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity) : parseFloat(s)),
    }),
  ],
});

/**
 * Text that may hold what js-yaml and the `yaml` package read differently: a directive
 * (`%YAML 1.1` changes the schema), a document marker, an explicit key (`? `), or a flow
 * collection as a key (`[a]: b`; js-yaml makes a string of it, the `yaml` package another),
 * or a comment right after a closing bracket or quote (`{a: 1}#`: js-yaml takes it, YAML
 * wants a space before). It may match what is none of these (`a: "x]: y"`): such a text just
 * takes the careful way.
 * Anchors, aliases and tags are seen as js-yaml reads them (listener below).
 */
const NOT_PLAIN = /^(?:%|---|\.\.\.)|(?:^|[\s[{,])\?(?:\s|$)|[\]}][ \t]*:(?:[ \t\r\n]|$)|[\]}"']#/m;

/** Keys the careful parser reads as something other than the same string (a null key is `''` there, `'null'` in js-yaml), or refuses; a comma or bracket may be a collection key js-yaml joined. */
const NOT_A_PLAIN_KEY = (key: string) => CORE_SCALARS.some((pattern) => pattern.test(key)) || FORBIDDEN_KEYS.has(key) || /[[\]{},]/.test(key);

class NotPlain extends Error {}

/** What js-yaml's listener sees of a node (its State has more). */
interface NodeState {
  readonly anchor: string | null;
  readonly tag: string | null;
  readonly kind: string | null;
  /** Where js-yaml is in the text: at the node's start when it opens, just after it when it closes. */
  readonly position: number;
}

/**
 * A js-yaml listener that aborts the read at the first node with an anchor (so no alias can
 * name one: js-yaml refuses an alias without), with a tag other than the core scalar types'
 * (which both libraries resolve alike: `!!int "3"` is 3 in both), or that goes on over more
 * than one line but a block scalar or collection: js-yaml accepts the further lines of a flow
 * collection or a quoted or plain scalar at any indentation, the `yaml` package (and YAML)
 * only indented past the block around it.
 */
function plainNodesOnly(text: string): (event: string, node: unknown) => void {
  const opened: number[] = [];
  return (event, node) => {
    const state = node as NodeState;
    if (event === 'open') {
      opened.push(state.position);
      return;
    }
    const start = opened.pop()!;
    if (state.anchor !== null) throw new NotPlain();
    if (state.tag !== null && state.tag !== '?' && !(state.kind === 'scalar' && /^tag:yaml\.org,2002:(?:null|bool|int|float)$/.test(state.tag))) throw new NotPlain();
    if (state.kind === 'scalar') {
      // Only a block scalar (`|`, `>`) may go on over lines; a quoted or plain one may not here.
      const written = text.slice(start, state.position).trim();
      if (written.includes('\n') && written[0] !== '|' && written[0] !== '>') throw new NotPlain();
    } else {
      const last = text[state.position - 1];
      if ((last === ']' || last === '}') && text.lastIndexOf('\n', state.position - 1) >= start) throw new NotPlain();
    }
  };
}

/** The config's value, or undefined where the careful parser must read it. */
export function parsePlainYaml(text: string): Record<string, unknown> | undefined {
  if (NOT_PLAIN.test(text)) return undefined;
  let value: unknown;
  try {
    // js-yaml recurses per node: past its maxDepth it throws (nodes count, scalars too, so one
    // more than the limit's collections); the careful parser then reports the depth.
    value = load(text, { schema: CORE_1_2, listener: plainNodesOnly(text), maxDepth: CONFIG_LIMITS.depth + 2 } as LoadOptions);
  } catch {
    return undefined;
  }
  return isPlainMapping(value) && withinLimits(value) ? value : undefined;
}

function isPlainMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** Every key plain, every string, the nesting and the whole within limits.ts (counted as the careful parser counts them, or more). */
function withinLimits(root: Record<string, unknown>): boolean {
  let values = 0;
  let characters = 0;
  const stringFits = (s: string) => {
    characters += s.length;
    return s.length * 3 <= CONFIG_LIMITS.stringBytes || Buffer.byteLength(s) <= CONFIG_LIMITS.stringBytes;
  };
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    values += 1;
    if (typeof value === 'string' && !stringFits(value)) return false;
    if (typeof value !== 'object' || value === null) continue;
    if (depth + 1 > CONFIG_LIMITS.depth) return false;
    if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, depth: depth + 1 });
    } else {
      if (!isPlainMapping(value)) return false;
      for (const [key, item] of Object.entries(value)) {
        values += 1;
        if (NOT_A_PLAIN_KEY(key) || !stringFits(key)) return false;
        stack.push({ value: item, depth: depth + 1 });
      }
    }
    if (values > CONFIG_LIMITS.expandedValues || characters > CONFIG_LIMITS.expandedCharacters) return false;
  }
  return values <= CONFIG_LIMITS.expandedValues && characters <= CONFIG_LIMITS.expandedCharacters;
}
