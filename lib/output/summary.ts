/**
 * The short report `npm run synth` prints: per environment its services, waves and
 * resources, each service with its wave, and requested against available capacity.
 */
import { Colours, colours } from '../util/colours';
import { formatCores, formatGibibytes } from '../util/quantity';
import type { EnvironmentOutput } from './synthesize';
import { describeComputeMode } from '../passes/capacity';

export function formatSummary(
  environments: readonly EnvironmentOutput[],
  outdir: string,
  elapsedMs: number,
  paint: Colours = colours({ isTTY: false }),
): string {
  const lines: string[] = [];
  for (const env of environments) {
    const waves = new Set(env.services.map((s) => s.wave)).size;
    const resources = env.services.reduce((n, s) => n + s.resources, 0);
    lines.push(
      `${paint.bold(env.environment)}: ${env.services.length} services in ${waves} waves, ${resources} resources, ` +
        `${env.files.size} files in ${outdir.replace(/\/+$/, '')}/${env.environment}/`,
    );
    const rows = [
      ['wave', 'service', 'layer', 'namespace', 'resources', 'upstream'],
      ...env.services.map((s) => [String(s.wave), s.name, s.layer, s.namespace, String(s.resources), s.upstream.join(', ') || '-']),
    ];
    const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
    const format = (row: string[]) => `  ${row.map((cell, col) => cell.padEnd(widths[col])).join('  ').trimEnd()}`;
    lines.push(paint.dim(format(rows[0])), ...rows.slice(1).map(format));
    const { requested, available } = env.capacity;
    lines.push(
      `  requested/available: cpu ${formatCores(requested.cpuCores)}/${formatCores(available.cpuCores)} cores, ` +
        `memory ${formatGibibytes(requested.memoryBytes)}/${formatGibibytes(available.memoryBytes)}, gpu ${requested.gpus}/${available.gpus}`,
    );
    if (env.capacity.computeModes.length > 0) lines.push(`  compute: ${env.capacity.computeModes.map(describeComputeMode).join(', ')}`);
    if (env.secrets.length > 0) {
      lines.push('  secrets the services need (namespace/name: keys; source; purpose):');
      for (const need of env.secrets) {
        lines.push(`    ${need.namespace}/${need.name}: ${need.keys.join(', ')}; ${need.source ?? 'create by hand'}; ${need.purpose}`);
      }
    }
    for (const warning of env.warnings) lines.push(`  ${paint.yellow('warning:')} ${warning}`);
    lines.push('');
  }
  lines.push(`synthesized ${environments.length} environment${environments.length === 1 ? '' : 's'} in ${(elapsedMs / 1000).toFixed(2)} s`);
  return `${lines.join('\n')}\n`;
}
