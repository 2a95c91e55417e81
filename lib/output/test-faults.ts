/**
 * TEST-ONLY fault injection for the crash-safety tests (test/crash-safety.test.ts), which kill
 * real synth processes at every step of a write: each change the writer makes to the file
 * system announces itself here first, as a numbered step.
 *
 * - `HOMELAB_TEST_KILL_AT_STEP=<n>`: the process kills itself with SIGKILL just before step n
 *   (what a power cut of the process, `kill -9` or the OOM killer does: no handler runs).
 * - `HOMELAB_TEST_TRACE_STEPS=1`: every step is printed on stderr as `fs step <n>: <what> <path>`,
 *   so that a test can choose the steps to kill at.
 *
 * Neither is set outside those tests; then a step costs one comparison. The count is per
 * process: one command run writes once.
 */
const KILL_AT_STEP = Number(process.env.HOMELAB_TEST_KILL_AT_STEP ?? 0);
const TRACE_STEPS = process.env.HOMELAB_TEST_TRACE_STEPS === '1';
let steps = 0;

/** Called just before each change to the file system: `what` is the operation, `path` what it changes. */
export function testStep(what: string, path: string): void {
  if (KILL_AT_STEP === 0 && !TRACE_STEPS) return;
  steps += 1;
  if (TRACE_STEPS) process.stderr.write(`fs step ${steps}: ${what} ${path}\n`);
  if (steps === KILL_AT_STEP) process.kill(process.pid, 'SIGKILL');
}
