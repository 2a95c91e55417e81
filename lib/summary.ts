/** The short report `npm run synth` prints: per environment, each service with its wave. */
import { formatCores, formatGibibytes } from './quantity';
import type { SynthesizedEnvironment } from './synth';

export function formatSummary(environments: readonly SynthesizedEnvironment[], outdir: string, elapsedMs: number): string {
  const lines: string[] = [];
  for (const env of environments) {
    lines.push(`${env.environment}: ${env.services.length} services, ${env.files.size} files in ${outdir}/${env.environment}/`);
    const rows = [
      ['wave', 'service', 'layer', 'namespace', 'resources', 'upstream'],
      ...env.services.map((s) => [String(s.wave), s.name, s.layer, s.namespace, String(s.resources), s.upstream.join(', ') || '-']),
    ];
    const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
    for (const row of rows) lines.push(`  ${row.map((cell, col) => cell.padEnd(widths[col])).join('  ').trimEnd()}`);
    const { requested, available } = env.capacity;
    lines.push(
      `  requested/available: cpu ${formatCores(requested.cpuCores)}/${formatCores(available.cpuCores)} cores, ` +
        `memory ${formatGibibytes(requested.memoryBytes)}/${formatGibibytes(available.memoryBytes)}, gpu ${requested.gpus}/${available.gpus}`,
    );
    if (env.secrets.length > 0) {
      lines.push('  secrets the services need (namespace/name: keys; source; purpose):');
      for (const need of env.secrets) {
        const source = need.vaultPath ? `Vault ${need.vaultPath}` : 'create by hand';
        lines.push(`    ${need.namespace}/${need.name}: ${need.keys.join(', ')}; ${source}; ${need.purpose}`);
      }
    }
    for (const warning of env.warnings) lines.push(`  warning: ${warning}`);
    lines.push('');
  }
  lines.push(`synthesized ${environments.length} environment${environments.length === 1 ? '' : 's'} in ${(elapsedMs / 1000).toFixed(2)} s`);
  return `${lines.join('\n')}\n`;
}
