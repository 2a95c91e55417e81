/**
 * Output paths are safe (ADR 20): synth replaces only a missing or empty directory or an output
 * tree it wrote, and a document it generated; anything else, and every I/O failure, is an
 * `error:` line naming the path, exit 2, before anything is written, with nothing left behind.
 * Links in the output are replaced, never followed or kept; modes are ordinary.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLATFORM_DOC_HEADER } from '../lib/output/platform-doc';
import { GENERATED_HEADER } from '../lib/output/output-guard';
import { writeOutput } from '../lib/output/writer';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { FIXTURES, readTree, runMain, tempDir } from './support';

const SMALL = join(FIXTURES, 'small.yaml');

/** A failed synth: exit 2, `error:` lines without a stack trace; returns stderr. */
function expectRefused(result: { status: number | null; stderr: string }, error: RegExp): string {
  expect(result.status, result.stderr).toBe(2);
  expect(result.stderr).toMatch(error);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  return result.stderr;
}

/** Every entry under dir (links not followed) -> its kind and, for files, content: what must not change. */
function snapshot(dir: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (current: string, prefix: string) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      const stats = lstatSync(path);
      if (stats.isDirectory()) {
        entries.set(`${prefix}${name}/`, 'dir');
        walk(path, `${prefix}${name}/`);
      } else entries.set(`${prefix}${name}`, stats.isSymbolicLink() ? 'link' : readFileSync(path, 'latin1'));
    }
  };
  walk(dir, '');
  return entries;
}

describe('the output directory synth replaces', () => {
  it('may be missing, empty, or one synth wrote; a directory holding anything else is refused before anything is written', () => {
    const dir = tempDir();
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(runMain(['--config', SMALL, '--out', empty, '--quiet']).status).toBe(0);
    expect(readTree(empty).size).toBeGreaterThan(0);
    // Written before: replaced again (here by an identical tree: nothing to do).
    expect(runMain(['--config', SMALL, '--out', empty, '--quiet']).status).toBe(0);

    // `--out /tmp/victim`: an unrelated directory keeps its files, and no docs/ appears beside it.
    const victims = tempDir();
    mkdirSync(join(victims, 'victim', 'photos'), { recursive: true });
    writeFileSync(join(victims, 'victim', 'photos', 'cat.jpg'), 'meow');
    const stderr = expectRefused(runMain(['--config', SMALL, '--out', join(victims, 'victim')]), /^error: .*\/victim: .*\/victim\/photos\/cat\.jpg was not written by synth/m);
    expect(stderr).toContain('nothing was written');
    expect(snapshot(victims)).toEqual(new Map([['victim/', 'dir'], ['victim/photos/', 'dir'], ['victim/photos/cat.jpg', 'meow']]));

    // A YAML file without the generated header is not ours either, even among generated ones.
    writeFileSync(join(empty, 'lab', 'kustomization.yaml'), 'resources: []\n');
    const before = snapshot(dir);
    expectRefused(runMain(['--config', SMALL, '--out', empty]), /^error: .*\/empty: .*\/empty\/lab\/kustomization\.yaml was not written by synth/m);
    expect(snapshot(dir)).toEqual(before);
  });

  it('is not a folder of another output tree (`--out k8s/prod`), and is named, not empty', () => {
    const dir = tempDir();
    expect(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), '--quiet']).status).toBe(0);
    const before = snapshot(dir);
    expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'k8s', 'lab')]), /^error: .*\/k8s\/lab: .*\/k8s\/lab\/[^/]+\/[^/]+\.yaml is a file synth wrote, but not at <environment>\/<application>\/<file> as in an output directory of its own/m);
    for (const option of ['--out', '--docs', '--runbook', '--config']) {
      expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), option, '']), new RegExp(`^error: ${option}: expected <(dir|file)>, received ""$`, 'm'));
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('is never the root directory or one holding the working directory (`--out /`, `--out .`)', () => {
    // --check writes nothing, whatever happens.
    expectRefused(runMain(['--config', SMALL, '--out', '/', '--check']), /^error: \/: the output directory is the root directory; /m);
    // The real CLI in a directory of its own, so that `.` is that directory.
    const cwd = tempDir();
    writeFileSync(join(cwd, 'notes.txt'), 'mine');
    const run = spawnSync(process.execPath, [...npmCommandArgs('synth'), '--config', SMALL, '--out', '.'], { cwd, encoding: 'utf8' });
    expectRefused(run, /^error: \.: the output directory holds the working directory; /m);
    expect(snapshot(cwd)).toEqual(new Map([['notes.txt', 'mine']]));
  });

  it('is not a file or a symbolic link', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'file')]), /^error: .*\/file: the output directory is not a directory/m);
    mkdirSync(join(dir, 'target'));
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'link')]), /^error: .*\/link: the output directory is a symbolic link/m);
    expect(snapshot(dir)).toEqual(new Map([['file', 'x'], ['link', 'link'], ['target/', 'dir']]));
  });

  it('replaces links inside it, never following or keeping them; --check reports them', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    expect(runMain(['--config', SMALL, '--out', out, '--quiet']).status).toBe(0);
    const written = readTree(out);
    // A file replaced by a link to a copy outside (same content), and a link to a directory outside.
    const outside = join(tempDir(), 'outside');
    mkdirSync(outside);
    const [file, content] = [...written].find(([path]) => path.startsWith('lab/apps/'))!;
    writeFileSync(join(outside, 'copy.yaml'), content);
    writeFileSync(join(outside, 'secret.txt'), 'not yours');
    const link = join(out, file);
    rmSync(link);
    symlinkSync(join(outside, 'copy.yaml'), link);
    symlinkSync(outside, join(out, 'lab', 'elsewhere'));

    const check = runMain(['--config', SMALL, '--out', out, '--check', '--quiet']);
    expect(check.status).toBe(1);
    expect(check.stderr).toContain(`  changed  ${out}/${file} (not a regular file)\n`);
    expect(check.stderr).toContain(`  removed  ${out}/lab/elsewhere (not a regular file)\n`);

    expect(runMain(['--config', SMALL, '--out', out, '--quiet']).status).toBe(0);
    expect(lstatSync(link).isFile()).toBe(true);
    expect(existsSync(join(out, 'lab', 'elsewhere'))).toBe(false);
    expect(readTree(out)).toEqual(written);
    expect(snapshot(outside)).toEqual(new Map([['copy.yaml', content], ['secret.txt', 'not yours']]));
    expect(runMain(['--config', SMALL, '--out', out, '--check', '--quiet']).status).toBe(0);
  });

  it('with --env, keeps the other environments (links in them dropped) and refuses a foreign file there too', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    mkdirSync(join(out, 'other', 'app'), { recursive: true });
    writeFileSync(join(out, 'other', 'app', 'kept.yaml'), `${GENERATED_HEADER}kind: ConfigMap\n`);
    symlinkSync(join(dir, 'nowhere'), join(out, 'other', 'app', 'dangling.yaml'));
    expect(runMain(['--config', SMALL, '--out', out, '--env', 'lab', '--quiet']).status).toBe(0);
    expect(snapshot(join(out, 'other'))).toEqual(new Map([['app/', 'dir'], ['app/kept.yaml', `${GENERATED_HEADER}kind: ConfigMap\n`]]));
    expect(readTree(join(out, 'lab')).size).toBeGreaterThan(0);

    writeFileSync(join(out, 'other', 'notes.md'), 'mine');
    const before = snapshot(dir);
    expectRefused(runMain(['--config', SMALL, '--out', out, '--env', 'lab']), /other\/notes\.md was not written by synth/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('gets ordinary modes: directories and files as the umask makes them (not 0700)', () => {
    const dir = tempDir();
    // What this process's umask makes of a new directory and file; the CLI inherits it.
    mkdirSync(join(dir, 'probe'));
    writeFileSync(join(dir, 'probe', 'file'), '');
    const [dirMode, fileMode] = [statSync(join(dir, 'probe')).mode & 0o777, statSync(join(dir, 'probe', 'file')).mode & 0o777];
    const out = join(dir, 'k8s');
    const run = spawnSync(process.execPath, [...npmCommandArgs('synth'), '--config', SMALL, '--out', out, '--quiet'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const modes = (path: string) => statSync(path).mode & 0o777;
    expect(modes(out)).toBe(dirMode);
    expect(modes(join(dir, 'docs'))).toBe(dirMode);
    expect(modes(join(dir, 'docs', 'platform.md'))).toBe(fileMode);
    for (const file of readTree(out).keys()) {
      expect(modes(join(out, file))).toBe(fileMode);
      expect(modes(join(out, file, '..'))).toBe(dirMode);
    }
  });
});

describe('the document synth replaces (--docs)', () => {
  it('may be missing or one synth generated; a directory, a foreign file, a link or a path inside the output is refused before anything is written', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    mkdirSync(join(dir, 'docs', 'platform.md'), { recursive: true });
    writeFileSync(join(dir, 'notes.md'), 'mine');
    symlinkSync(join(dir, 'notes.md'), join(dir, 'link.md'));
    const before = snapshot(dir);
    const refused = (docs: string, error: RegExp) => expectRefused(runMain(['--config', SMALL, '--out', out, '--docs', docs]), error);

    refused(join(dir, 'docs', 'platform.md'), /^error: .*\/docs\/platform\.md: the document is a directory/m);
    refused(join(dir, 'notes.md'), /^error: .*\/notes\.md: was not written by synth \(it does not start with "<!-- Generated by homelab-platform/m);
    refused(join(dir, 'link.md'), /^error: .*\/link\.md: the document is a symbolic link/m);
    refused(join(out, 'platform.md'), /^error: .*\/k8s\/platform\.md: the document is inside the output directory/m);
    // The output directory was not created, let alone replaced.
    expect(snapshot(dir)).toEqual(before);

    const generated = join(dir, 'generated.md');
    writeFileSync(generated, `${PLATFORM_DOC_HEADER}older diagrams\n`);
    expect(runMain(['--config', SMALL, '--out', out, '--docs', generated, '--quiet']).status).toBe(0);
    expect(readFileSync(generated, 'utf8')).not.toContain('older diagrams');
  });
});

describe('I/O failures while writing', () => {
  // Root ignores file modes, so a read-only directory cannot fail it: the test below makes a
  // fault root cannot get past instead.
  it.skipIf(process.getuid?.() === 0)('EACCES (a read-only parent): names the path and the reason, exit 2, output untouched, nothing left', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    mkdirSync(out);
    writeFileSync(join(out, 'old.yaml'), `${GENERATED_HEADER}old\n`);
    const before = snapshot(dir);
    chmodSync(dir, 0o555);
    try {
      expectRefused(runMain(['--config', SMALL, '--out', out, '--docs', join(tempDir(), 'platform.md')]), /^error: .*\/k8s: cannot write the output: EACCES: permission denied, .*k8s~synth-\d+-/m);
    } finally {
      chmodSync(dir, 0o755);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('ENOTDIR (a file where a folder of the path should be): named, exit 2, nothing written', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'file', 'k8s')]), /^error: .*\/file\/k8s: cannot check it: ENOTDIR: not a directory, lstat /m);
    expectRefused(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), '--docs', join(dir, 'file', 'platform.md')]), /^error: .*\/file\/platform\.md: cannot check it: ENOTDIR/m);
    expect(snapshot(dir)).toEqual(new Map([['file', 'x']]));
  });

  it('EISDIR while staging the document (after the tree is staged): the output untouched, every temporary removed', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    const docs = join(dir, 'docs', 'platform.md');
    expect(runMain(['--config', SMALL, '--out', out, '--quiet']).status).toBe(0);
    const before = snapshot(dir);
    // A directory where this process (the in-process synth) stages the document: a fault even root gets.
    const staged = join(dir, 'docs', `.platform.md~synth-${process.pid}-staged`);
    mkdirSync(staged);
    const changed = [{ environment: 'lab', files: new Map([['apps/new.yaml', `${GENERATED_HEADER}new\n`]]) }];
    expect(() => writeOutput(changed, { outdir: out, documents: [{ path: docs, content: `${PLATFORM_DOC_HEADER}new\n`, header: PLATFORM_DOC_HEADER }] })).toThrow(
      /^.*\/k8s: cannot write the output: EISDIR: illegal operation on a directory, open '.*\/docs\/\.platform\.md~synth-\d+-staged'$/,
    );
    expect(snapshot(dir)).toEqual(before);
  });
});
