/**
 * The layering docs/architecture.md draws: every relative import between the folders it names
 * follows one of its arrows, every arrow is used, and the core (model, passes, output) holds no
 * built-in service's name.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { ARGOCD_NAMESPACE } from '../lib/model/argocd';
import { OUTPUT_FOLDERS } from '../lib/model/catalog';
import { Layer as DeploymentLayer } from '../lib/model/layers';
import { ROOT } from './support';

interface Layer {
  readonly id: string;
  /** Files or folders (ending in `/`) relative to the repository root. */
  readonly paths: readonly string[];
}

/** The diagram's nodes (`id["path, path — what"]`) and arrows (`a --> b`). */
function diagram(): { layers: Layer[]; arrows: Set<string> } {
  const text = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const mermaid = /```mermaid\n([\s\S]*?)```/.exec(text)![1];
  const layers: Layer[] = [];
  const arrows = new Set<string>();
  for (const line of mermaid.split('\n').map((l) => l.trim())) {
    const node = /^(\w+)\["([^"]+?) — /.exec(line);
    if (node) layers.push({ id: node[1], paths: node[2].split(',').map((p) => p.trim()) });
    const arrow = /^(\w+) --> (\w+)$/.exec(line);
    if (arrow) arrows.add(`${arrow[1]} --> ${arrow[2]}`);
  }
  return { layers, arrows };
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const isFolder = (path: string) => statSync(join(ROOT, path), { throwIfNoEntry: false })?.isDirectory() === true;

function layerOf(layers: readonly Layer[], file: string): Layer | undefined {
  const path = relative(ROOT, file);
  const matches = (p: string) => {
    const folder = p.replace(/\/$/, '');
    return isFolder(folder) ? path === folder || path.startsWith(`${folder}/`) : [path, `${path}.ts`].includes(p) || path === `${p}.ts`;
  };
  return layers.find((layer) => layer.paths.some(matches));
}

/** Relative module specifiers a file imports, statically or dynamically. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
}

describe('the architecture', () => {
  const { layers, arrows } = diagram();
  const ownFiles = layers
    .filter((layer) => layer.id !== 'imports')
    .flatMap((layer) => layer.paths.flatMap((p) => (isFolder(p) ? sourceFiles(join(ROOT, p)) : [join(ROOT, p.endsWith('.ts') ? p : `${p}.ts`)])));

  it('draws every folder of the code as a layer', () => {
    expect(layers.map((l) => l.id).sort()).toEqual(['charts', 'entry', 'imports', 'model', 'output', 'passes', 'tools', 'util']);
    for (const dir of ['lib', 'charts', 'scripts']) {
      for (const file of sourceFiles(join(ROOT, dir))) expect(layerOf(layers, file), relative(ROOT, file)).toBeDefined();
    }
  });

  it('imports only along the arrows, and uses every arrow', () => {
    const used = new Set<string>();
    const wrong: string[] = [];
    for (const file of ownFiles) {
      const from = layerOf(layers, file)!;
      for (const specifier of importsOf(file)) {
        const to = layerOf(layers, resolve(dirname(file), specifier));
        if (!to) {
          wrong.push(`${relative(ROOT, file)} imports ${specifier}, which is in no layer`);
        } else if (to !== from) {
          const arrow = `${from.id} --> ${to.id}`;
          if (arrows.has(arrow)) used.add(arrow);
          else wrong.push(`${relative(ROOT, file)} (${from.id}) imports ${specifier} (${to.id}): no arrow ${arrow}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect([...arrows].filter((arrow) => !used.has(arrow))).toEqual([]);
  });

  it('keeps the names of the built-in services out of the core', () => {
    // Words the core uses in another sense than a service's name.
    const otherSense = new Set([
      // Argo CD is the core's own engine: the app of apps and its namespace are part of the model.
      ARGOCD_NAMESPACE,
      ...OUTPUT_FOLDERS,
      // The last layer of the deployment sequence.
      DeploymentLayer.VERIFICATION,
      // The component label of the monitors and rules the core emits for every service.
      'monitoring',
    ]);
    const names = new Set(BUILTIN_CATALOG.entries.flatMap((entry) => [entry.name, ...entry.names]).filter((name) => !otherSense.has(name)));
    const core = layers.filter((layer) => ['model', 'passes', 'output', 'util'].includes(layer.id));
    const found: string[] = [];
    for (const file of core.flatMap((layer) => layer.paths.flatMap((p) => sourceFiles(join(ROOT, p))))) {
      for (const [, literal] of readFileSync(file, 'utf8').matchAll(/'([a-z0-9-]+)'/g)) {
        if (names.has(literal)) found.push(`${relative(ROOT, file)}: '${literal}'`);
      }
    }
    expect(found).toEqual([]);
  });
});
