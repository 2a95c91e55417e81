/**
 * `npm run diff` output: plain text for a terminal, or Markdown for a pull-request comment
 * (a heading per environment, a table per Application, field changes folded in <details>).
 */
import type { Colours } from '../util/colours';
import { ApplicationDiff, ChangeCounts, ChangeKind, countResources, EnvironmentDiff, FieldChange, ResourceDiff } from './diff';

/** Longest value shown before it is cut with `…`. */
const MAX_VALUE = 60;
/** Field changes listed per resource; the rest are counted. */
const MAX_FIELDS = 25;

const MARK: Record<ChangeKind, string> = { added: '+', removed: '-', changed: '~' };
/** A change the API server refuses in place (ResourceDiff.refused). */
const REFUSED_MARK = '!';

export interface DiffReportContext {
  /** What the output was compared with, e.g. `HEAD (3f2a1bc)`. */
  readonly base: string;
  /** The output directory, e.g. `k8s`. */
  readonly outdir: string;
}

export function formatText(diff: readonly EnvironmentDiff[], context: DiffReportContext, paint: Colours): string {
  const lines: string[] = [];
  const colour = (kind: ChangeKind) => (kind === 'added' ? paint.green : kind === 'removed' ? paint.red : paint.yellow);
  for (const env of diff) {
    lines.push(paint.bold(`${env.environment}${env.kind === 'changed' ? '' : ` (environment ${env.kind})`}: ${describeCounts(totalCounts(env.applications))}`));
    for (const app of env.applications) {
      lines.push(colour(app.kind)(`  ${MARK[app.kind]} ${app.application}${applicationNote(app)}`));
      for (const resource of app.resources) {
        lines.push(colour(resource.kind)(`      ${MARK[resource.kind]} ${resource.resource}`));
        if (resource.kind !== 'changed') continue;
        if (resource.refused) lines.push(paint.red(`          ! ${resource.refused}`));
        const { lines: fields, more } = fieldLines(resource);
        if (fields.length === 0) lines.push(paint.dim('          (only comments or formatting)'));
        for (const field of fields) for (const line of textField(field)) lines.push(`          ${line}`);
        if (more > 0) lines.push(paint.dim(`          … and ${more} more`));
      }
    }
    lines.push('');
  }
  lines.push(summaryLine(diff, context));
  return `${lines.join('\n')}\n`;
}

/** GitHub refuses a comment longer than this, in characters (its API answers "Body is too long"). */
export const GITHUB_COMMENT_MAX_CHARS = 65_536;

export interface MarkdownOptions {
  /**
   * The longest the text may be. Past it the details are left out in steps — the field changes
   * of the last Applications, then of all, then the resource tables, then the sections per
   * environment, then the overview table — and a note at the top says what was left out.
   * @default GITHUB_COMMENT_MAX_CHARS
   */
  readonly maxChars?: number;
}

/** How much a Markdown report holds, most first (the first with the field changes of all, some or none of the Applications); each step leaves out what the note says. */
const MARKDOWN_LEVELS = [
  { resources: true, environments: true, overview: true, left: '' },
  { resources: false, environments: true, overview: true, left: 'the resources and their field changes' },
  { resources: false, environments: false, overview: true, left: 'the sections per environment' },
  { resources: false, environments: false, overview: false, left: 'all but the totals' },
] as const;
type MarkdownLevel = (typeof MARKDOWN_LEVELS)[number];

/** The report as Markdown, as much of it as fits `maxChars` (the totals always: they are the shortest it can be). */
export function formatMarkdown(diff: readonly EnvironmentDiff[], context: DiffReportContext, options: MarkdownOptions = {}): string {
  const maxChars = options.maxChars ?? GITHUB_COMMENT_MAX_CHARS;
  const withFields = diff.flatMap((env) => env.applications).filter(hasFieldChanges).length;
  const detailed = (fieldsFor: number) => markdownAt(MARKDOWN_LEVELS[0], { diff, context, maxChars, fieldsFor, withFields });
  const full = detailed(withFields);
  if (full.length <= maxChars) return full;
  let fitting = detailed(0);
  if (fitting.length <= maxChars) {
    // The field changes of as many Applications as fit, in the report's order: each adds to the text.
    let fits = 0;
    let fitsNot = withFields;
    while (fitsNot - fits > 1) {
      const middle = Math.floor((fits + fitsNot) / 2);
      const text = detailed(middle);
      if (text.length <= maxChars) [fits, fitting] = [middle, text];
      else fitsNot = middle;
    }
    return fitting;
  }
  let text = '';
  for (const level of MARKDOWN_LEVELS.slice(1)) {
    text = markdownAt(level, { diff, context, maxChars, fieldsFor: 0, withFields });
    if (text.length <= maxChars) break;
  }
  return text;
}

/** `65,536`: digits in threes, the same in every locale. */
function grouped(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+$)/g, ',');
}

function hasFieldChanges(app: ApplicationDiff): boolean {
  return app.resources.some((r) => r.kind === 'changed');
}

interface MarkdownReport {
  readonly diff: readonly EnvironmentDiff[];
  readonly context: DiffReportContext;
  readonly maxChars: number;
  /** The field changes of this many Applications that have any, the first in the report's order. */
  readonly fieldsFor: number;
  /** How many Applications have field changes. */
  readonly withFields: number;
}

/** What a report at `level` with the field changes of `fieldsFor` Applications leaves out, for its note ('' for nothing). */
function leftOut(level: MarkdownLevel, fieldsFor: number, withFields: number): string {
  if (level.left !== '') return level.left;
  if (fieldsFor >= withFields) return '';
  if (fieldsFor === 0) return 'the field changes';
  const last = withFields - fieldsFor;
  return `the field changes of the last ${last === 1 ? 'Application' : `${last} Applications`} of the ${withFields} with field changes`;
}

function markdownAt(level: MarkdownLevel, report: MarkdownReport): string {
  const { diff, context, maxChars, fieldsFor, withFields } = report;
  const out: string[] = [`### \`${context.outdir}/\` changes`, '', `${summaryLine(diff, context)}.`, '', ...refusedList(diff)];
  const left = leftOut(level, fieldsFor, withFields);
  if (left !== '') {
    const limit = maxChars === GITHUB_COMMENT_MAX_CHARS ? `${grouped(maxChars)} characters (a GitHub comment's limit)` : `${grouped(maxChars)} characters`;
    out.push(`_Left out to fit ${limit}: ${left}. The same command with \`--format text\` shows all of it._`, '');
  }
  if (diff.length > 0 && level.overview) out.push(...overviewTable(diff), '');
  let fieldsShown = 0;
  for (const env of level.environments ? diff : []) {
    const note = env.kind === 'changed' ? '' : ` (environment ${env.kind})`;
    out.push(`#### ${env.environment}${note}`, '', describeCounts(totalCounts(env.applications)), '');
    for (const app of env.applications) {
      if (!level.resources) {
        out.push(`- **${code(app.application)}**${app.kind === 'changed' ? `: ${describeCounts(totalCounts([app]))}` : applicationNote(app)}`);
        continue;
      }
      out.push(`**${code(app.application)}**${applicationNote(app)}`, '');
      const table = ['| | resource | change |', '|---|---|---|', ...app.resources.map(resourceRow)];
      // A whole new or removed Application says enough in one line; its resource list folds away.
      if (app.kind === 'changed') out.push(...table, '');
      else out.push(`<details><summary>${app.resources.length} resources</summary>`, '', ...table, '', '</details>', '');
      if (!hasFieldChanges(app)) continue;
      fieldsShown += 1;
      if (fieldsShown > fieldsFor) continue;
      out.push('<details><summary>field changes</summary>', '');
      for (const resource of app.resources.filter((r) => r.kind === 'changed')) {
        const { lines: fields, more } = fieldLines(resource);
        const items = fields.length === 0 ? ['only comments or formatting'] : fields.map(markdownField);
        out.push(code(resource.resource), '', ...items.map((item) => `- ${item}`), ...(more > 0 ? [`- … and ${more} more`] : []), '');
      }
      out.push('</details>', '');
    }
    if (!level.resources) out.push('');
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

/**
 * The changes the API server refuses in place, each with what to do, under the summary: never left
 * out to fit, as a sync fails on each until it is done.
 */
function refusedList(diff: readonly EnvironmentDiff[]): string[] {
  const refused = refusedChanges(diff).map(({ environment, resource }) => `- ${code(environment)} ${code(resource.resource)}: ${resource.refused}`);
  return refused.length > 0 ? [`**${REFUSED_MARK} Before the sync:**`, '', ...refused, ''] : [];
}

/** The changed resources the API server refuses in place, with their environment, in the report's order. */
function refusedChanges(diff: readonly EnvironmentDiff[]): { environment: string; resource: ResourceDiff }[] {
  return diff.flatMap(({ environment, applications }) => applications.flatMap((app) => app.resources.filter((r) => r.refused).map((resource) => ({ environment, resource }))));
}

function summaryLine(diff: readonly EnvironmentDiff[], context: DiffReportContext): string {
  if (diff.length === 0) return `No changes to ${context.outdir}/ against ${context.base}`;
  const applications = diff.reduce((n, env) => n + env.applications.length, 0);
  const counts = totalCounts(diff.flatMap((env) => env.applications));
  const refused = refusedChanges(diff).length;
  const refusedNote = refused > 0 ? `; Kubernetes refuses ${refused} of the changes in place (marked ${REFUSED_MARK}, with what to do)` : '';
  return `Against ${context.base}: ${describeCounts(counts)} in ${plural(applications, 'Application')} of ${plural(diff.length, 'environment')}${refusedNote}`;
}

function applicationNote(app: ApplicationDiff): string {
  if (app.kind === 'added') return ` (new Application, ${plural(app.resources.length, 'resource')})`;
  if (app.kind === 'removed') return ` (Application removed, ${plural(app.resources.length, 'resource')})`;
  return '';
}

function totalCounts(applications: readonly ApplicationDiff[]): ChangeCounts {
  return countResources(applications.flatMap((app) => app.resources));
}

/** `3 resources added, 1 removed, 2 changed`. */
function describeCounts(counts: ChangeCounts): string {
  const parts = (['added', 'removed', 'changed'] as const).filter((kind) => counts[kind] > 0);
  return parts.map((kind, i) => (i === 0 ? `${plural(counts[kind], 'resource')} ${kind}` : `${counts[kind]} ${kind}`)).join(', ');
}

/** Applications by environment at a glance: `new (7)`, `removed (6)`, `+1 -2 ~3`. */
function overviewTable(diff: readonly EnvironmentDiff[]): string[] {
  const applications = [...new Set(diff.flatMap((env) => env.applications.map((app) => app.application)))].sort();
  const cell = (app: ApplicationDiff | undefined) => {
    if (!app) return '';
    if (app.kind === 'added') return `new (${app.resources.length})`;
    if (app.kind === 'removed') return `removed (${app.resources.length})`;
    const counts = countResources(app.resources);
    return (['added', 'removed', 'changed'] as const).filter((kind) => counts[kind] > 0).map((kind) => `${MARK[kind]}${counts[kind]}`).join(' ');
  };
  return [
    `| Application | ${diff.map((env) => env.environment).join(' | ')} |`,
    `|---|${diff.map(() => '---').join('|')}|`,
    ...applications.map((name) => `| ${code(name, true)} | ${diff.map((env) => cell(env.applications.find((a) => a.application === name))).join(' | ')} |`),
  ];
}

function resourceRow(resource: ResourceDiff): string {
  const change = resource.kind !== 'changed' ? resource.kind : `${resource.refused ? `**${REFUSED_MARK}** ` : ''}${changedPathsCell(resource.fields)}`;
  return `| ${MARK[resource.kind]} | ${code(resource.resource, true)} | ${change} |`;
}

/** The first few changed paths, for the table; the values are in the details. */
function changedPathsCell(fields: readonly FieldChange[]): string {
  if (fields.length === 0) return 'comments or formatting';
  const shown = fields.slice(0, 3).map((f) => code(f.path, true));
  return fields.length > shown.length ? `${shown.join(', ')} and ${fields.length - shown.length} more` : shown.join(', ');
}

/** A field change with its values already cut to size. */
interface FieldLine {
  readonly kind: ChangeKind;
  readonly path: string;
  readonly before?: string;
  readonly after?: string;
  /** A long value's change in place: `"…same[-old-]{+new+}same…"`. */
  readonly inline?: string;
  /** A multi-line value's changed lines, `- old` and `+ new`, and where they are. */
  readonly lines?: { readonly note: string; readonly changes: readonly string[] };
}

/** The first MAX_FIELDS field changes of a changed resource (empty: only comments or formatting differ). */
function fieldLines(resource: ResourceDiff): { lines: FieldLine[]; more: number } {
  return { lines: resource.fields.slice(0, MAX_FIELDS).map(describeField), more: Math.max(0, resource.fields.length - MAX_FIELDS) };
}

function describeField(field: FieldChange): FieldLine {
  const { kind, path } = field;
  if (kind === 'added') return { kind, path, after: formatValue(field.after) };
  if (kind === 'removed') return { kind, path, before: formatValue(field.before) };
  if (typeof field.before === 'string' && typeof field.after === 'string') {
    if (field.before.includes('\n') || field.after.includes('\n')) return { kind, path, lines: describeTextChange(field.before, field.after) };
    const before = JSON.stringify(field.before);
    const after = JSON.stringify(field.after);
    if (before.length > MAX_VALUE || after.length > MAX_VALUE) return { kind, path, inline: inlineChange(before, after) };
  }
  return { kind, path, before: formatValue(field.before), after: formatValue(field.after) };
}

/** `spec.replicas: 1 -> 3`, `+ path: value`, `- path: value`; a long or multi-line value shows what changed in it. */
export function formatField(field: FieldChange): string {
  return textField(describeField(field)).join('\n');
}

function textField(line: FieldLine): string[] {
  if (line.kind === 'added') return [`+ ${line.path}: ${line.after}`];
  if (line.kind === 'removed') return [`- ${line.path}: ${line.before}`];
  if (line.inline !== undefined) return [`${line.path}: ${line.inline}`];
  if (line.lines) return [`${line.path}: ${line.lines.note}`, ...line.lines.changes.map((change) => `  ${change}`)];
  return [`${line.path}: ${line.before} -> ${line.after}`];
}

function markdownField(line: FieldLine): string {
  if (line.kind === 'added') return `added ${code(line.path)}: ${code(line.after!)}`;
  if (line.kind === 'removed') return `removed ${code(line.path)}: ${code(line.before!)}`;
  if (line.inline !== undefined) return `${code(line.path)}: ${code(line.inline)}`;
  if (line.lines) return `${code(line.path)}: ${line.lines.note}\n\n  \`\`\`diff\n${line.lines.changes.map((change) => `  ${change}`).join('\n')}\n  \`\`\``;
  return `${code(line.path)}: ${code(line.before!)} → ${code(line.after!)}`;
}

/** Compact JSON, cut at MAX_VALUE characters; a multi-line string as its first line and line count. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string' && value.includes('\n')) {
    const lines = value.replace(/\n$/, '').split('\n');
    return `${truncate(JSON.stringify(lines[0]))} (${plural(lines.length, 'line')})`;
  }
  return truncate(value === undefined ? 'undefined' : JSON.stringify(value));
}

/** Characters of unchanged context kept on each side of a change. */
const CONTEXT = 20;
/** Longest removed or added part shown in full; longer ones are cut in the middle. */
const MAX_PART = 80;

/**
 * Two long one-line values as one, with the part that differs marked: the common beginning and
 * end are kept for CONTEXT characters around the change, `[-removed-]{+added+}` in between.
 */
export function inlineChange(before: string, after: string): string {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (end < before.length - start && end < after.length - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
  const prefix = before.slice(0, start);
  const suffix = before.slice(before.length - end);
  const head = prefix.length > CONTEXT ? `…${prefix.slice(prefix.length - CONTEXT)}` : prefix;
  const tail = suffix.length > CONTEXT ? `${suffix.slice(0, CONTEXT)}…` : suffix;
  const part = (text: string) => (text.length > MAX_PART ? `${text.slice(0, MAX_PART / 2)}…${text.slice(text.length - MAX_PART / 2)}` : text);
  const removed = before.slice(start, before.length - end);
  const added = after.slice(start, after.length - end);
  return `${head}${removed ? `[-${part(removed)}-]` : ''}${added ? `{+${part(added)}+}` : ''}${tail}`;
}

/** Changed lines listed per value, at most; the rest are counted. */
const MAX_CHANGED_LINES = 8;

/**
 * Where two multi-line strings (scripts, config files) differ: the changed block's lines as
 * `- old` and `+ new`, each line that has a counterpart showing its change in place.
 */
function describeTextChange(before: string, after: string): { note: string; changes: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const removed = a.slice(start, a.length - end);
  const added = b.slice(start, b.length - end);
  const changes: string[] = [];
  // Line i of the old block is paired with line i of the new one: shown as one line with its change marked.
  const pairs = Math.min(removed.length, added.length);
  for (let i = 0; i < pairs; i++) changes.push(`~ ${inlineChange(removed[i], added[i])}`);
  for (const line of removed.slice(pairs)) changes.push(`- ${truncate(line)}`);
  for (const line of added.slice(pairs)) changes.push(`+ ${truncate(line)}`);
  const shown = changes.slice(0, MAX_CHANGED_LINES);
  if (changes.length > shown.length) shown.push(`… and ${changes.length - shown.length} more lines`);
  return { note: `from line ${start + 1}: ${plural(removed.length, 'line')} -> ${added.length}`, changes: shown };
}

function truncate(text: string): string {
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** A Markdown code span that survives backticks in the text (and pipes inside a table). */
function code(text: string, inTable = false): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const padded = longest > 0 ? ` ${text} ` : text;
  return `${fence}${inTable ? padded.replace(/\|/g, '\\|') : padded}${fence}`;
}
