/**
 * Where a pinned chart's archive comes from (lib/tools/upstream/chart-archive.ts): a chart cache
 * folder (offline), or the chart's Helm repository over HTTP into a download cache; failures are
 * UserErrors naming the chart, the folder or the URL. The repository here is a local HTTP
 * server; the archives are built by the test.
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ChartReference } from '../lib/model/sources';
import { archiveName, chartArchive, chartFiles, isOciRepository, sha256 } from '../lib/tools/upstream/chart-archive';
import { readTarGz } from '../lib/util/tar-gz';
import { chartTgz, tarGz } from './tar';
import { tempDir, userErrorOf } from './support';

const demo = (version: string, repoURL = 'https://charts.example.org'): ChartReference => ({ repoURL, chart: 'demo', version });


describe('readTarGz', () => {
  it('reads regular files, with the long paths of PAX headers', () => {
    const long = `demo/${'templates/'.repeat(12)}deployment.yaml`;
    const files = readTarGz(tarGz({ 'demo/Chart.yaml': 'name: demo\n', [long]: 'kind: Deployment\n' }));
    expect([...files.keys()]).toEqual(['demo/Chart.yaml', long]);
    expect(files.get(long)!.toString()).toBe('kind: Deployment\n');
  });

  it('refuses bytes that are not a gzipped tar', () => {
    expect(() => readTarGz(Buffer.from('not gzip'))).toThrow();
  });
});

describe('chartFiles', () => {
  it("gives the chart's files by their path in the chart", () => {
    const dir = tempDir();
    const archive = join(dir, 'demo-1.0.0.tgz');
    writeFileSync(archive, chartTgz('demo', '1.0.0', { 'values.yaml': 'replicas: 1\n' }));
    const files = chartFiles(archive, 'demo');
    expect([...files.keys()].sort()).toEqual(['Chart.yaml', 'values.yaml']);
  });

  it('names the archive when it is not the chart asked for, or not an archive', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'other.tgz'), chartTgz('other', '1.0.0'));
    writeFileSync(join(dir, 'broken.tgz'), 'html error page');
    expect(() => chartFiles(join(dir, 'other.tgz'), 'demo')).toThrow(/other\.tgz: holds no demo\/Chart\.yaml/);
    expect(() => chartFiles(join(dir, 'broken.tgz'), 'demo')).toThrow(/broken\.tgz: not a chart archive/);
  });
});

describe('chartArchive from a chart cache folder', () => {
  it('takes the archive `helm pull` names <chart>-<version>.tgz', async () => {
    const cache = tempDir();
    writeFileSync(join(cache, 'demo-1.0.0.tgz'), chartTgz('demo', '1.0.0'));
    expect(await chartArchive(demo('1.0.0'), { chartCache: cache })).toBe(join(cache, 'demo-1.0.0.tgz'));
  });

  it('says when a version is not in the cache, and how to get it', async () => {
    const cache = tempDir();
    writeFileSync(join(cache, 'demo-1.0.0.tgz'), chartTgz('demo', '1.0.0'));
    const message = await userErrorOf(chartArchive(demo('1.0.1'), { chartCache: cache }));
    expect(message).toContain(`chart demo 1.0.1 is not in the chart cache ${cache} (no demo-1.0.1.tgz)`);
    expect(message).toContain('helm pull demo --repo https://charts.example.org --version 1.0.1');
    expect(await userErrorOf(chartArchive(demo('1.0.0'), { chartCache: join(cache, 'missing') }))).toContain(`chart cache ${join(cache, 'missing')}: no such folder`);
  });

  it("refuses an archive whose digest is not the one the cache's index.yaml publishes", async () => {
    const cache = tempDir();
    writeFileSync(join(cache, 'demo-1.0.0.tgz'), chartTgz('demo', '1.0.0'));
    writeFileSync(join(cache, 'index.yaml'), stringify({ apiVersion: 'v1', entries: { demo: [{ version: '1.0.0', digest: '0'.repeat(64) }] } }));
    expect(await userErrorOf(chartArchive(demo('1.0.0'), { chartCache: cache }))).toMatch(/demo-1\.0\.0\.tgz: sha256 [0-9a-f]{64}, but the repository index says 0{64}/);
  });
});

describe('chartArchive from a Helm repository over HTTP', () => {
  const good = chartTgz('demo', '1.0.0', { 'values.yaml': 'replicas: 1\n' });
  const tampered = chartTgz('demo', '2.0.0', { 'values.yaml': 'replicas: 2\n' });
  const requests: string[] = [];
  let server: Server;
  let repoURL: string;

  beforeAll(async () => {
    const index = {
      apiVersion: 'v1',
      entries: {
        demo: [
          { version: '1.0.0', urls: ['archives/demo-1.0.0.tgz'], digest: sha256(good) },
          { version: '2.0.0', urls: ['archives/demo-2.0.0.tgz'], digest: sha256(good) },
        ],
      },
    };
    server = createServer((request, response) => {
      requests.push(request.url!);
      if (request.url === '/charts/index.yaml') response.end(stringify(index));
      else if (request.url === '/charts/archives/demo-1.0.0.tgz') response.end(good);
      else if (request.url === '/charts/archives/demo-2.0.0.tgz') response.end(tampered);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    repoURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/charts`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('finds the version in index.yaml, downloads it once into the download cache, and checks its digest', async () => {
    const downloads = tempDir();
    const archive = await chartArchive(demo('1.0.0', repoURL), { downloadCache: downloads });
    expect(archive).toBe(join(downloads, archiveName(demo('1.0.0'))));
    expect(readFileSync(archive).equals(good)).toBe(true);
    const before = requests.length;
    expect(await chartArchive(demo('1.0.0', repoURL), { downloadCache: downloads })).toBe(archive);
    expect(requests.length).toBe(before);
  });

  it('keeps nothing of a download whose digest is wrong, and says so', async () => {
    const downloads = tempDir();
    expect(await userErrorOf(chartArchive(demo('2.0.0', repoURL), { downloadCache: downloads }))).toContain(`${repoURL}/archives/demo-2.0.0.tgz: sha256 ${sha256(tampered)}`);
    expect(readdirSync(downloads)).toEqual([]);
  });

  it('names the index when the version is not in it', async () => {
    expect(await userErrorOf(chartArchive(demo('9.9.9', repoURL), { downloadCache: tempDir() }))).toBe(`chart demo 9.9.9 is not in the repository index ${repoURL}/index.yaml`);
  });

  it('fails offline with the URL and the way to work offline', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const message = await userErrorOf(chartArchive(demo('1.0.0', `http://127.0.0.1:${port}/charts`), { downloadCache: tempDir() }));
    expect(message).toBe(
      `cannot download http://127.0.0.1:${port}/charts/index.yaml: ECONNREFUSED (offline? charts can come from a folder of archives: --chart-cache DIR or HOMELAB_CHART_CACHE)`,
    );
  });
});

describe('chartArchive from an OCI registry', () => {
  it('tells an OCI repoURL (no scheme, as Argo CD takes it) from an HTTP one', () => {
    expect(isOciRepository('ghcr.io/n8n-io/n8n-helm-chart')).toBe(true);
    expect(isOciRepository('https://charts.longhorn.io')).toBe(false);
  });

  it('says that helm is needed when it is not on PATH', async () => {
    const path = process.env.PATH;
    const empty = tempDir();
    mkdirSync(join(empty, 'bin'));
    process.env.PATH = join(empty, 'bin');
    try {
      const message = await userErrorOf(chartArchive(demo('1.0.0', 'ghcr.io/example/charts'), { downloadCache: tempDir() }));
      expect(message).toContain('helm is needed to pull the OCI chart oci://ghcr.io/example/charts/demo 1.0.0 and is not on PATH');
    } finally {
      process.env.PATH = path;
    }
  });
});
