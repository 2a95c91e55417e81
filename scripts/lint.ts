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
import { CommandSpec, parseCommandLine, runCommand } from '../lib/tools/cli';

export const LINT_COMMAND: CommandSpec = {
  usage: 'npm run lint:k8s -- [--dir <tree>]',
  description:
    'Checks every workload (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, RayCluster and RabbitmqCluster pod\n' +
    `templates), Service and ServiceMonitor/PodMonitor in <tree>/<env>/<service>/ against the rules below. Exceptions, each\n` +
    `with its reason: ${EXCEPTIONS_FILE}.\n\nrules:\n${RULES.map((r) => `  ${r.id.padEnd(32)} ${r.description} (${r.source})`).join('\n')}`,
  options: { dir: { type: 'string', value: '<tree>', default: 'k8s', description: 'the output tree to lint' } },
  exitStatus: ['0  no violation', '1  violations (listed on stdout)', '2  usage error, or no output tree to read'],
};

export function main(args: readonly string[]): number {
  return runCommand(() => {
    const parsed = parseCommandLine(LINT_COMMAND, args);
    if (!parsed) return 0;
    const dir = parsed.values.dir as string;
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
