/**
 * The config text as a plain value, or a UserError for each thing in it that is not a config:
 * invalid YAML, repeated keys, keys that would reach an object's prototype, strings larger
 * than Kubernetes stores, aliases that refer to nothing or to what contains them, and nesting
 * or alias expansion past the limits (limits.ts, docs/adr/0021).
 *
 * A plain config is read by js-yaml first (plain-yaml.ts, its depth limited); anything it declines
 * is read here, where nothing recurses on the input: the nesting is measured on the parser's token tree
 * (built without recursion) before the composer, which recurses, sees it; then one loop walks
 * the composed document with aliases expanded, so that keys, strings, depth and size are
 * checked together and a "billion laughs" stops at the budget instead of after it.
 */
import { Alias, Composer, CST, isAlias, isCollection, isMap, isScalar, LineCounter, Node, Pair, Parser } from 'yaml';
import { UserError } from '../../util/errors';
import { CONFIG_LIMITS, FORBIDDEN_KEYS } from './limits';
import { parsePlainYaml } from './plain-yaml';

export function parseConfigYaml(text: string, file: string): unknown {
  // Plain YAML within the limits reads the same either way, several times faster (plain-yaml.ts).
  return parsePlainYaml(text) ?? parseCarefully(text, file);
}

function parseCarefully(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)];
  const tooDeep = firstTooDeep(tokens, CONFIG_LIMITS.depth);
  if (tooDeep !== undefined) throw new UserError([`${file}: ${at(tooDeep)}: ${tooDeepMessage()}`]);

  // The parser's own uniqueKeys check compares every key with every other of its mapping:
  // seconds for a thousand apps. The walk below does it with a set. Warnings (a mapping as a
  // key) would go to the process's warnings; the schema reports what they are about.
  const documents = [...new Composer({ uniqueKeys: false, logLevel: 'error' }).compose(tokens, true, text.length)];
  const document = documents[0];
  const errors = document.errors.map((e) => `${file}: invalid YAML at ${at(e.pos[0])}: ${e.message.split('\n')[0]}`);
  if (documents.length > 1) errors.push(`${file}: invalid YAML at ${at(documents[1].range[0])}: a second document; a config is one document`);
  if (errors.length > 0) throw new UserError(errors);

  const problems = checkDocument(document.contents, file, at);
  if (problems.length > 0) throw new UserError(problems);
  try {
    // Aliases are bounded by the walk above, which counts every expansion; the library's own
    // count (maxAliasCount, default 100 per anchor) would refuse 101 apps sharing one anchor.
    return document.toJS({ maxAliasCount: -1 });
  } catch (error) {
    // What the conversion refuses is in the text (e.g. a YAML 1.1 merge key `<<` of a scalar).
    throw new UserError([`${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
}

function tooDeepMessage(): string {
  return `mappings and lists nested more than ${CONFIG_LIMITS.depth} levels deep, the most a config may be`;
}

/** The offset of the first collection nested deeper than `limit`, on the token tree. */
function firstTooDeep(tokens: readonly CST.Token[], limit: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = [];
  for (const token of [...tokens].reverse()) if (token.type === 'document' && token.value) stack.push({ token: token.value, depth: 0 });
  while (stack.length > 0) {
    const { token, depth: parentDepth } = stack.pop()!;
    if (!CST.isCollection(token)) continue;
    const depth = parentDepth + 1;
    if (depth > limit) return token.offset;
    // Reversed, so that the first in the file is found first.
    for (let i = token.items.length - 1; i >= 0; i--) {
      const { key, value } = token.items[i];
      if (value) stack.push({ token: value, depth });
      if (key) stack.push({ token: key, depth });
    }
  }
  return undefined;
}

/** A place in the expanded document: the node there and how it was reached. */
interface Visit {
  readonly node: Node | null;
  readonly parent?: Visit;
  /** The key or index that leads here from the parent. */
  readonly segment?: string;
  /** Mappings and lists above this node. */
  readonly depth: number;
  /** The outermost alias this node is reached through, if any (it is then a repeat of a node seen before). */
  readonly via?: Alias;
}

/**
 * A key and its value, taken up when everything before it has been walked: an alias key
 * (`*k: ...`) names the anchor as defined at that place.
 */
interface PairVisit {
  readonly pair: Pair<Node | null, Node | null>;
  readonly map: Visit;
  /** The keys of the mapping so far (not for a repeat through an alias: reported where written). */
  readonly seen?: Set<string>;
}

/**
 * Every problem of the document, walking it once in document order with aliases expanded.
 * Problems of a node are reported where it is written, not again at every alias of it; the
 * limits that bound the walk (depth, expanded size) stop it at once.
 */
function checkDocument(root: Node | null, file: string, at: (offset: number) => string): string[] {
  const problems: string[] = [];
  const pathOf = (visit: Visit) => {
    const segments: string[] = [];
    for (let v: Visit | undefined = visit; v?.segment !== undefined; v = v.parent) segments.push(v.segment);
    return `${file}: ${segments.length > 0 ? segments.reverse().join('.') : '(top level)'}`;
  };
  const throughAlias = (visit: Visit) => (visit.via ? ` (through the alias *${visit.via.source} at ${at(offsetOf(visit.via))})` : '');
  const overBudget = (visit: Visit, what: string) =>
    new UserError([`${pathOf(visit)}: with its aliases expanded the config holds more than ${what}, the most it may hold${throughAlias(visit)}`]);
  /** The node each anchor names at the current place in the document (a later anchor of the same name replaces it). */
  const anchors = new Map<string, Node>();
  /** What each alias named where it is written (an expanded alias resolves as it did there). */
  const resolved = new Map<Alias, Node>();
  const resolve = (alias: Alias) => resolved.get(alias) ?? anchors.get(alias.source);
  let values = 0;
  let characters = 0;

  const stack: (Visit | PairVisit)[] = [{ node: root, depth: 0 }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if ('pair' in next) {
      const { pair, map, seen } = next;
      const key = keyOf(pair.key, resolve);
      const child = { parent: map, segment: key.text, depth: map.depth + 1, via: map.via };
      if (seen) {
        if (FORBIDDEN_KEYS.has(key.text)) problems.push(`${pathOf(child as Visit)}: keys named __proto__, constructor or prototype are not allowed (${at(offsetOf(pair.key))})`);
        if (seen.has(key.identity)) problems.push(`${file}: invalid YAML at ${at(offsetOf(pair.key))}: Map keys must be unique`);
        seen.add(key.identity);
      }
      stack.push({ ...child, node: pair.value }, { ...child, node: pair.key });
      continue;
    }
    const visit = next;
    const { node } = visit;
    if (node === null) continue;
    values += 1;
    if (values > CONFIG_LIMITS.expandedValues) throw overBudget(visit, `${CONFIG_LIMITS.expandedValues} keys and values`);

    if (isAlias(node)) {
      const source = resolve(node);
      if (!source) {
        if (!visit.via) problems.push(`${pathOf(visit)}: the alias *${node.source} at ${at(offsetOf(node))} names no anchor (&${node.source}) before it`);
        continue;
      }
      if (!visit.via) {
        for (let v = visit.parent; v; v = v.parent) {
          if (v.node === source) throw new UserError([`${pathOf(visit)}: the alias *${node.source} at ${at(offsetOf(node))} is inside the value it names`]);
        }
        resolved.set(node, source);
      }
      stack.push({ ...visit, node: source, via: visit.via ?? node });
      continue;
    }
    if (!visit.via && node.anchor) anchors.set(node.anchor, node);

    if (isScalar(node)) {
      if (typeof node.value !== 'string') continue;
      characters += node.value.length;
      if (characters > CONFIG_LIMITS.expandedCharacters) throw overBudget(visit, `${CONFIG_LIMITS.expandedCharacters} characters of keys and strings`);
      // A UTF-16 unit is at most three UTF-8 bytes: only a long string needs counting.
      if (!visit.via && node.value.length * 3 > CONFIG_LIMITS.stringBytes) {
        const bytes = Buffer.byteLength(node.value);
        if (bytes > CONFIG_LIMITS.stringBytes) {
          problems.push(
            `${pathOf(visit)}: expected a string of at most ${CONFIG_LIMITS.stringBytes} bytes (1 MiB, the most a Kubernetes object such as a ConfigMap or Secret holds), received ${bytes} bytes at ${at(offsetOf(node))}`,
          );
        }
      }
      continue;
    }
    if (!isCollection(node)) continue;
    if (visit.depth + 1 > CONFIG_LIMITS.depth) throw new UserError([`${pathOf(visit)}: ${tooDeepMessage()}${throughAlias(visit)}`]);
    // Pushed in reverse, so that they are taken up in the order of the file.
    if (isMap(node)) {
      const seen = visit.via ? undefined : new Set<string>();
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ pair: node.items[i] as Pair<Node | null, Node | null>, map: visit, seen });
    } else {
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ parent: visit, segment: String(i), depth: visit.depth + 1, node: node.items[i] as Node | null, via: visit.via });
    }
  }
  return problems;
}

function offsetOf(node: Node | null): number {
  return node?.range?.[0] ?? 0;
}

/** A mapping key as the parsed value's property name (`text`) and as the duplicate check compares it (`identity`: type and value). */
function keyOf(key: Node | null, resolve: (alias: Alias) => Node | undefined): { text: string; identity: string } {
  // An alias key names the anchor's value (`*k: ...` with `k: &k __proto__` is the key __proto__).
  const node = isAlias(key) ? (resolve(key) ?? null) : key;
  if (node === null) return { text: '', identity: 'null:' };
  if (isScalar(node)) {
    const value = node.value;
    return { text: value === null ? '' : String(value), identity: `${typeof value}:${String(value)}` };
  }
  const text = JSON.stringify(node);
  return { text, identity: `node:${text}` };
}
