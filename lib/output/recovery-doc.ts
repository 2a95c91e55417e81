/**
 * docs/disaster-recovery.md: the runbook for a lost cluster, per environment, from what the
 * services declare (HomelabService.declareRecovery, lib/model/recovery.ts): what to have at hand
 * before starting, what Git restores by itself, then each store only backups restore — where its
 * backups go, how often, the commands that restore it and the ones that show it worked — in
 * RECOVERY_ORDER, so that a step uses only what the steps above it restored. It ends with the
 * end-to-end verification, whose restore tests prove the backups again. Environments with the same
 * runbook share it.
 */
import { Layer } from '../model/layers';
import { Recovery, RECOVERY_ORDER } from '../model/recovery';
import { byName, EnvironmentModel, folded, PLATFORM_DOC_HEADER } from './platform-doc';
import type { ServiceSummary } from './synthesize';

/** Every generated document starts with the same line: output-guard.ts replaces only a file that does. */
export const RECOVERY_DOC_HEADER = PLATFORM_DOC_HEADER;

/** The commands the steps use, available before anything is restored. */
const TOOLS = 'a shell with `kubectl` for the new cluster, the `argocd` CLI logged in to its Argo CD, and the AWS CLI (any S3 client does)';

export function renderRecoveryDoc(environments: readonly EnvironmentModel[]): string {
  const lines = [
    '# Disaster recovery',
    '',
    'What a lost cluster needs back, and in which order. Git restores everything else by itself:',
    'bootstrap Argo CD from `k8s/<env>/bootstrap/` (README "Bootstrapping a cluster") and it syncs',
    'every service as committed. Then restore the data Git does not hold, top to bottom: secrets',
    'first (every other service reads them), then databases, then volumes. Each step uses only what',
    'the steps above it restored; run its check before going on.',
    '',
    ...folded(environments, (env) => recoveryRunbook(env.services), '##'),
  ];
  return RECOVERY_DOC_HEADER + lines.join('\n').replace(/\n+$/, '\n');
}

/** The environment's runbook: at hand, restored by Git, the restores in RECOVERY_ORDER with their checks, the verification. */
export function recoveryRunbook(services: readonly ServiceSummary[]): string {
  const steps = RECOVERY_ORDER.flatMap((stage) =>
    byName(services).flatMap((service) => service.recoveries.filter((r) => r.stage === stage).map((recovery) => ({ service: service.name, recovery }))),
  );
  const restoredByGit = `Restored by Git (Argo CD): ${byName(services).map((s) => `\`${s.name}\``).join(', ')}.`;
  if (steps.length === 0) return [restoredByGit, '', 'Nothing is backed up off-site on a schedule here: data outside Git is lost with the cluster.'].join('\n');
  const atHand = [...new Set([TOOLS, ...steps.flatMap(({ recovery }) => recovery.atHand)])];
  const lines = ['**Have at hand before you start** (kept offline: the cluster that held them is gone):', '', ...atHand.map((item) => `- ${item}`), '', restoredByGit, ''];
  steps.forEach(({ service, recovery }, i) => {
    lines.push(`${i + 1}. **${recovery.data}** (\`${service}\`, ${recovery.stage}): backed up to \`${recovery.target}\`, ${recovery.schedule}.`, '');
    lines.push(...indentedBlock('Restore:', recovery.restore), ...indentedBlock('Check:', recovery.check));
    lines.push(`   The verification (last step) tests these backups again: Job \`${jobRef(recovery)}\`.`, '');
  });
  lines.push(...verificationStep(services, steps.length + 1, steps.map(({ recovery }) => recovery)));
  return lines.join('\n').trimEnd();
}

/** The last step: sync the end-to-end verification, then read each restore test's PASS line. */
function verificationStep(services: readonly ServiceSummary[], number: number, recoveries: readonly Recovery[]): string[] {
  const verification = services.find((s) => s.layer === Layer.VERIFICATION);
  if (verification === undefined) return [];
  const logs = [...new Set(recoveries.map(jobRef))].map((ref) => {
    const [namespace, job] = ref.split('/');
    return `kubectl -n ${namespace} logs job/${job}   # PASS, with the age of the backup it restored`;
  });
  return [
    `${number}. **Everything restored: the end-to-end verification.** It runs every checkpoint again and the restore tests of the backups above.`,
    '',
    ...indentedBlock('Run and check:', [`argocd app sync ${verification.name}   # Succeeded; a failed check fails the sync, and the report Job's log names it`, ...logs]),
  ];
}

function jobRef(recovery: Recovery): string {
  return `${recovery.restoreCheck.namespace}/${recovery.restoreCheck.job}`;
}

/** A labelled shell block inside a numbered list item. */
function indentedBlock(title: string, commands: readonly string[]): string[] {
  if (commands.length === 0) return [];
  return [`   ${title}`, '', '   ```sh', ...commands.map((command) => `   ${command}`), '   ```', ''];
}
