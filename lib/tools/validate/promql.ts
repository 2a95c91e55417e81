/**
 * PromQL checks with Prometheus' own grammar (@prometheus-io/lezer-promql), for the tests and
 * the whole-cluster checks: a typo in an alert rule fails the build instead of a rule group in a
 * running Prometheus.
 * Beyond syntax, one class of type error is caught that the grammar accepts: range vectors
 * (`x[5m]`, subqueries) anywhere but as the argument of a function that takes one, and such a
 * function given none (`rate(x)`).
 */
import { parser } from '@prometheus-io/lezer-promql';

/** A node of the parse tree (@lezer/common's SyntaxNode, which is not a direct dependency). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/** Functions taking a range vector, by their node names in the grammar (Prometheus 3.x). */
const RANGE_FUNCTIONS: ReadonlySet<string> = new Set([
  'AbsentOverTime',
  'AvgOverTime',
  'Changes',
  'CountOverTime',
  'Delta',
  'Deriv',
  'DoubleExponentialSmoothing',
  'FirstOverTime',
  'Idelta',
  'Increase',
  'Irate',
  'LastOverTime',
  'MadOverTime',
  'MaxOverTime',
  'MinOverTime',
  'PredictLinear',
  'PresentOverTime',
  'QuantileOverTime',
  'Rate',
  'Resets',
  'StddevOverTime',
  'StdvarOverTime',
  'SumOverTime',
  'TsOfFirstOverTime',
  'TsOfLastOverTime',
  'TsOfMaxOverTime',
  'TsOfMinOverTime',
]);

const RANGE_EXPRESSIONS: ReadonlySet<string> = new Set(['MatrixSelector', 'SubqueryExpr']);
/** Modifiers that wrap a range vector without changing its type: `x[5m] offset 1h`, `x[5m] @ 100`. */
const TRANSPARENT: ReadonlySet<string> = new Set(['OffsetExpr', 'StepInvariantExpr']);

/** Problems with one PromQL expression, each with the offset it was found at; empty if it is valid. */
export function promqlErrors(expr: string): string[] {
  if (expr.trim() === '') return ['empty expression'];
  const tree = parser.parse(expr);
  const syntax: string[] = [];
  const types: string[] = [];
  tree.iterate({
    enter: (ref) => {
      const node = ref.node;
      if (node.type.isError) {
        syntax.push(`syntax error at ${node.from}: ${JSON.stringify(context(expr, node.from))}`);
      } else if (RANGE_EXPRESSIONS.has(node.name) && !rangeFunctionOf(node)) {
        types.push(`range vector at ${node.from} outside a function taking one: ${JSON.stringify(expr.slice(node.from, node.to))}`);
      } else if (node.name === 'FunctionCall') {
        const name = functionName(node);
        if (name && RANGE_FUNCTIONS.has(name) && !hasRangeArgument(node)) {
          types.push(`${name} at ${node.from} needs a range vector argument: ${JSON.stringify(expr.slice(node.from, node.to))}`);
        }
      }
    },
  });
  // A tree with syntax errors is partly guesswork: its type problems would only be noise.
  return syntax.length > 0 ? syntax : types;
}

/** The range function whose argument a range expression is, if any. */
function rangeFunctionOf(node: SyntaxNode): string | undefined {
  let parent = node.parent;
  while (parent && TRANSPARENT.has(parent.name)) parent = parent.parent;
  if (parent?.name !== 'FunctionCallBody' || parent.parent?.name !== 'FunctionCall') return undefined;
  const name = functionName(parent.parent);
  return name && RANGE_FUNCTIONS.has(name) ? name : undefined;
}

/** `Rate` for `rate(...)`: the name of the FunctionIdentifier's only child. */
function functionName(call: SyntaxNode): string | undefined {
  return call.getChild('FunctionIdentifier')?.firstChild?.name;
}

function hasRangeArgument(call: SyntaxNode): boolean {
  const body = call.getChild('FunctionCallBody');
  for (let arg = body?.firstChild; arg; arg = arg.nextSibling) {
    let inner: SyntaxNode | null = arg;
    while (inner && TRANSPARENT.has(inner.name)) inner = inner.firstChild;
    if (inner && RANGE_EXPRESSIONS.has(inner.name)) return true;
  }
  return false;
}

function context(expr: string, at: number): string {
  return expr.slice(Math.max(0, at - 20), at) + '⟨here⟩' + expr.slice(at, at + 20);
}
