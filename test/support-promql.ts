/** PromQL assertions for the tests, over lib/tools/validate/promql.ts. */
import { promqlErrors } from '../lib/tools/validate/promql';

export { promqlErrors };

/** Throws with every problem of every expression, each named by its label (e.g. the alert). */
export function assertValidPromql(expressions: Iterable<{ label: string; expr: string }>): void {
  const problems = [...expressions].flatMap(({ label, expr }) => promqlErrors(expr).map((p) => `${label}: ${p}\n  ${expr}`));
  if (problems.length > 0) throw new Error(`invalid PromQL:\n${problems.join('\n')}`);
}
