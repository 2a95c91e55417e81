/**
 * The shell helpers of lib/model/checkpoint.ts that checkpoint scripts share, run on their own
 * under `sh -ec` as a checkpoint's script runs (dash here, busybox ash in the images).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDeadlineSeconds, CHECK_START_SECONDS, conditionWaitSeconds, KUBE_CALL_MAX_SECONDS, WITHIN } from '../lib/model/checkpoint';
import { FAKE_CLOCK, FAKE_SLEEP, runWithFakeCommands, tempDir } from './support';

describe('within: a program run with a time limit', () => {
  /** `script` after the function, under `sh -ec`; the watchdog's `sleep` returns at once, and `date` is the fake clock where `clock` is set (a minute later at every look). */
  const run = (script: string, options: { clock?: boolean; env?: Record<string, string> } = {}) =>
    runWithFakeCommands({ command: ['sh', '-ec', `${WITHIN}\n${script}`] }, { sleep: FAKE_SLEEP, ...(options.clock && { date: FAKE_CLOCK }) }, { env: options.env });

  it("returns the command's status and passes its input and output through", () => {
    const input = join(tempDir(), 'input');
    writeFileSync(input, 'from a file\n');
    const result = run(`fails() { echo "to stderr" >&2; return 3; }
s=0; within 60 fails || s=$?; echo "status $s"
echo piped | within 60 cat
within 60 cat < "${input}"
within 60 sh -c 'exit 0' && echo passed`);
    expect(result.stderr).toBe('to stderr\n');
    expect(result.stdout).toBe('status 3\npiped\nfrom a file\npassed\n');
    expect(result.status).toBe(0);
  });

  it('kills a command that outlasts its limit, says so, and returns 124', () => {
    // The fake clock passes the four minutes in four looks; the command (the real sleep, 30 s) ends sooner only when killed.
    const result = run(`s=0; within 240 /bin/sleep 30 || s=$?; echo "status $s"`, { clock: true });
    expect(result.stdout).toBe('status 124\n');
    expect(result.stderr).toContain("gave up on '/bin/sleep 30' after 240 s");
  });

  it('fails closed: a limit that is not a whole number, or a watchdog without a clock, is an error, not a run without a limit', () => {
    for (const limit of ['', '2s', '-1', '1.5']) {
      const result = run(`s=0; within '${limit}' true || s=$?; echo "status $s"`);
      expect(result.stdout, limit).toBe('status 2\n');
      expect(result.stderr, limit).toContain(`within: not a whole number of seconds: '${limit}'`);
    }
    // `date` missing: the watchdog cannot tell the time.
    const clockless = run(`s=0; PATH=/nonexistent within 60 /bin/true || s=$?; echo "status $s"`);
    expect(clockless.stdout).toBe('status 2\n');
    expect(clockless.stderr).toContain("the watchdog of '/bin/true' failed (status 2): it ran without its limit");
  });
});

describe("the deadline of a check that waits for conditions", () => {
  it('counts each object its calls wait for, their tries shared, and refuses a call in a loop whose items it cannot count', () => {
    const one = checkDeadlineSeconds({ script: 'kube_condition /apis/a Ready' });
    const two = checkDeadlineSeconds({ script: 'kube_condition /apis/a Ready\necho a\nkube_condition /apis/b Ready' });
    expect(one).toBe(CHECK_START_SECONDS + conditionWaitSeconds(1));
    // One wait for both: the second adds only its passing ask.
    expect(two - one).toBe(KUBE_CALL_MAX_SECONDS);
    const loop = 'for crd in $CRDS; do\n  kube_condition "/apis/$crd" Established\ndone';
    expect(() => checkDeadlineSeconds({ script: loop })).toThrow(/calls kube_condition in a loop .*give its scriptSeconds/);
    expect(checkDeadlineSeconds({ script: loop, scriptSeconds: 700 })).toBe(CHECK_START_SECONDS + 700);
    // After the loop, a call counts again.
    expect(checkDeadlineSeconds({ script: `${'for x in 1; do\n  echo $x\ndone'}\nkube_condition /apis/a Ready` })).toBe(one);
  });
});
