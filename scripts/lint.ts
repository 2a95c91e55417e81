/**
 * `npm run lint:k8s [-- --dir other-tree]`: policy lint of every workload and selector in the
 * output tree (lib/tools/lint). One line per violation, `<env>/<file>: <rule>: <message>`, then a
 * summary; exits 1 on any violation.
 */
import { lintTree, formatViolation } from '../lib/tools/lint/lint';
import { RULES } from '../lib/tools/lint/rules';
import { EXCEPTIONS_FILE } from '../lib/tools/lint/exceptions';
import { readOutputTree } from '../lib/tools/lint/tree';
import { recoverInterruptedWrites } from '../lib/output/atomic-replace';
import { runCommand } from '../lib/tools/cli';

const USAGE = `usage: npm run lint:k8s [-- --dir <tree>]

Checks every workload (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, RayCluster and
RabbitmqCluster pod templates), Service and ServiceMonitor/PodMonitor in <tree>/<env>/<service>/
against the rules below. Exceptions, each with its reason: ${EXCEPTIONS_FILE}.

  --dir <tree>   the output tree to lint (default: k8s)
  --help         this text

rules:
${RULES.map((r) => `  ${r.id.padEnd(32)} ${r.description} (${r.source})`).join('\n')}
`;

export function main(args: readonly string[]): number {
  let dir = 'k8s';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--help' || args[i] === '-h') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (args[i] === '--dir' && args[i + 1] !== undefined) dir = args[++i];
    else {
      process.stderr.write(`lint:k8s: unknown argument ${args[i]}\n${USAGE}`);
      return 2;
    }
  }
  return runCommand(() => {
    // A synth killed while replacing the output left it to be finished first.
    recoverInterruptedWrites(dir);
    const report = lintTree(readOutputTree(dir));
    for (const violation of report.violations) process.stdout.write(`${formatViolation(violation)}\n`);
    process.stdout.write(
      `linted ${report.workloads} workloads in ${report.objects} objects of ${report.environments} environments with ${RULES.length} rules: ` +
        `${report.violations.length} violations, ${report.excused} findings excused by ${EXCEPTIONS_FILE}\n`,
    );
    return report.violations.length > 0 ? 1 : 0;
  });
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
