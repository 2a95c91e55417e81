/** docs/platform.md: Mermaid diagrams derived from the model, folded, deterministic, written atomically. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/model/checkpoint';

import { Layer } from '../lib/model/layers';
import { EnvironmentModel, label, nodeId, PLATFORM_DOC_HEADER, renderPlatformDoc } from '../lib/output/platform-doc';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { IMAGES } from '../charts/versions';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { writeOutput } from '../lib/output/writer';
import { buildPlatform, manifestsOf, PLATFORM_FIXTURE, platformObject, platformText, parseText, readTree, runMain, synthesizePlatformFixture, synthesizePlatforms, tempDir, toYamlText } from './support';

/** A label as the emitter may write it: only safe characters, entity codes and line breaks. */
const SAFE_LABEL = /^"(?:[A-Za-z0-9 ,.:/()'_-]|#\d+;|<br>)*"$/;
const ID = '[A-Za-z0-9_]+';
const LABEL = '"[^"]*"';

interface Flowchart {
  readonly direction: string;
  /** Node id -> decoded label. */
  readonly nodes: Map<string, string>;
  /** Node id -> class (`:::checkpoint`). */
  readonly classes: Map<string, string>;
  /** Subgraph id -> decoded label and the node ids declared in it. */
  readonly subgraphs: Map<string, { label: string; members: string[] }>;
  /** `from kind to`, kind one of `-->`, `-.->|needs|`, `==>`. */
  readonly edges: string[];
}

/**
 * Parses the subset of Mermaid flowchart syntax the document uses, strictly: any other line
 * fails the test, so a label that leaks out of its quotes cannot go unnoticed.
 */
function parseFlowchart(block: string): Flowchart {
  const [header, ...lines] = block.split('\n');
  const direction = /^flowchart (TD|LR)$/.exec(header)?.[1];
  if (!direction) throw new Error(`not a flowchart: ${header}`);
  const nodes = new Map<string, string>();
  const classes = new Map<string, string>();
  const subgraphs = new Map<string, { label: string; members: string[] }>();
  const edges: string[] = [];
  let open: string | undefined;
  const node = (id: string, text: string, cls?: string) => {
    expect(text, `label of ${id}`).toMatch(SAFE_LABEL);
    expect(nodes.has(id), `${id} declared twice`).toBe(false);
    nodes.set(id, decode(text));
    if (cls) classes.set(id, cls);
    if (open) subgraphs.get(open)!.members.push(id);
  };
  const shape = `(?:\\[(${LABEL})\\]|\\{\\{(${LABEL})\\}\\}|\\(\\[(${LABEL})\\]\\))(?::::(\\w+))?`;
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^  subgraph (${ID})\\[(${LABEL})\\]$`).exec(line))) {
      expect(open).toBeUndefined();
      expect(m[2]).toMatch(SAFE_LABEL);
      subgraphs.set(m[1], { label: decode(m[2]), members: [] });
      open = m[1];
    } else if (line === '  end') {
      open = undefined;
    } else if ((m = new RegExp(`^    (${ID})${shape}$`).exec(line))) {
      node(m[1], m[2] ?? m[3] ?? m[4], m[5]);
    } else if ((m = new RegExp(`^    (${ID})${shape} --> (${ID})${shape}$`).exec(line))) {
      node(m[1], m[2] ?? m[3] ?? m[4], m[5]);
      node(m[6], m[7] ?? m[8] ?? m[9], m[10]);
      edges.push(`${m[1]} --> ${m[6]}`);
    } else if ((m = new RegExp(`^  (${ID}) (-->|-\\.->\\|needs\\||==>) (${ID})$`).exec(line))) {
      edges.push(`${m[1]} ${m[2]} ${m[3]}`);
    } else if (!/^  classDef \w+ [\w:#,]+$/.test(line)) {
      throw new Error(`unexpected line: ${line}`);
    }
  }
  expect(open).toBeUndefined();
  return { direction, nodes, classes, subgraphs, edges };
}

function decode(quoted: string): string {
  return quoted
    .slice(1, -1)
    .replace(/<br>/g, ' ')
    .replace(/#(\d+);/g, (_, code) => String.fromCodePoint(Number(code)));
}

/** `## <title>` -> `### <environments>` -> the section's Mermaid block and the rest of its text. */
function sectionsOf(doc: string, title: string): Map<string, { flowchart: Flowchart; text: string }> {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`${title}\n`))!;
  const byEnvironment = new Map<string, { flowchart: Flowchart; text: string }>();
  for (const part of section.split(/^### /m).slice(1)) {
    const [heading, ...rest] = part.split('\n');
    const text = rest.join('\n');
    const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)\n```$/gm)].map((b) => b[1]);
    expect(blocks).toHaveLength(1);
    const flowchart = parseFlowchart(blocks[0]);
    for (const environment of heading.split(', ')) {
      expect(byEnvironment.has(environment), `${environment} twice under ${title}`).toBe(false);
      byEnvironment.set(environment, { flowchart, text });
    }
  }
  return byEnvironment;
}

/** Stands in for a service of another helper: exposes a host, references Longhorn, with a checkpoint description full of Markdown and Mermaid syntax. */
class ExposedApp extends HomelabService {
  constructor(platform: Platform, name: string, props: { storage: HomelabService; checkpoint: string }) {
    super(platform, name, props, { layer: Layer.AUTOMATION, namespace: name });
    for (const subdomain of ['exposed', 'exposed-admin']) {
      this.expose({ subdomain, serviceName: name, servicePort: 80, podPort: 'http', podSelector: this.selectorFor('server'), admin: subdomain.endsWith('admin') });
    }
    new Checkpoint(this, 'checkpoint', { description: props.checkpoint, image: IMAGES.busybox, script: 'true' });
  }
}

const NASTY = 'answers "ok" | <script>alert(1)</script> `code` %% comment; #35; [end] {x} *bold* _it_ \\ end';

function withExposedApp(environment: string): SynthesizedEnvironment {
  const app = new App({ outdir: '/dev/null' });
  const platform = buildPlatform(app, environment, parseText(platformText(), 'homelab.yaml').environments.get(environment)!);
  const storage = platform.services.find((s) => s.serviceName === 'longhorn')!;
  new ExposedApp(platform, 'exposed-app', { storage, checkpoint: NASTY });
  return synthesizePlatform(app, platform);
}

const example = synthesizePlatformFixture();
const doc = renderPlatformDoc(example);

describe('docs/platform.md', () => {
  it('is marked as generated', () => {
    expect(doc.split('\n')[0]).toMatch(/^<!-- Generated by .*`npm run synth`.* Do not edit\. -->$/);
  });

  it('draws every wave of every environment in order, each enabled service in its wave with its checkpoint', () => {
    const sequences = sectionsOf(doc, 'Deployment sequence');
    expect([...sequences.keys()].sort()).toEqual(example.map((e) => e.environment).sort());
    for (const env of example) {
      const { flowchart, text } = sequences.get(env.environment)!;
      const waves = [...new Set(env.services.map((s) => s.wave))].sort((a, b) => a - b);
      expect([...flowchart.subgraphs.keys()]).toEqual(waves.map((w) => `wave_${w}`));
      expect(flowchart.edges.filter((e) => e.startsWith('wave_'))).toEqual(waves.slice(1).map((w) => `wave_${w - 1} --> wave_${w}`));
      for (const wave of waves) {
        const inWave = env.services.filter((s) => s.wave === wave);
        const members = flowchart.subgraphs.get(`wave_${wave}`)!.members;
        expect(members.filter((id) => id.startsWith('s_')).map((id) => flowchart.nodes.get(id)).sort()).toEqual(inWave.map((s) => s.name).sort());
        for (const service of inWave) {
          const checkpoint = nodeId('c', service.name);
          expect(flowchart.edges).toContain(`${nodeId('s', service.name)} --> ${checkpoint}`);
          expect(flowchart.nodes.get(checkpoint)).toBe(service.checkpoint);
          expect(flowchart.classes.get(checkpoint)).toBe('checkpoint');
          expect(text).toContain(`| ${service.wave} | ${service.name} | ${service.layer} | ${service.namespace} | `);
        }
      }
      expect(text.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toHaveLength(env.services.length);
    }
  });

  it('takes each checkpoint description from the model, the same text as the Job annotation', () => {
    const prod = example.find((e) => e.environment === 'prod')!;
    const ray = prod.services.find((s) => s.name === 'ray')!;
    const job = manifestsOf(prod).find(({ path }) => path === 'ray/job-ray-checkpoint.yaml')!.manifest;
    expect(job.metadata.annotations!['homelab.dev/checkpoint']).toBe(ray.checkpoint);
    expect(ray.checkpoint).toMatch(/^the Ray dashboard reports the head and at least 1 worker/);
  });

  it('draws the architecture: layers in order, services in their layer, dependency edges as the graph has them', () => {
    const architectures = sectionsOf(doc, 'Architecture');
    for (const env of example) {
      const { flowchart } = architectures.get(env.environment)!;
      expect(flowchart.direction).toBe('LR');
      const layers = [...flowchart.subgraphs.keys()].filter((id) => id !== 'hosts');
      const order = Object.values(Layer).filter((l) => env.services.some((s) => s.layer === l));
      expect(layers).toEqual(order.map((l) => nodeId('layer', l)));
      for (const service of env.services) {
        expect(flowchart.subgraphs.get(nodeId('layer', service.layer))!.members).toContain(nodeId('s', service.name));
      }
      const layerOf = new Map(env.services.map((s) => [s.name, s.layer]));
      const expected = env.services.flatMap((s) =>
        s.layer === Layer.VERIFICATION
          ? // After everything: one edge from each layer it follows.
            [...new Set(s.dependsOn.map((d) => layerOf.get(d)!))].map((l) => `${nodeId('layer', l)} --> ${nodeId('s', s.name)}`)
          : s.dependsOn.map((d) => `${nodeId('s', d)} ${s.needDependsOn.includes(d) ? '-.->|needs|' : '-->'} ${nodeId('s', s.name)}`),
      );
      expect([...flowchart.edges].filter((e) => !e.includes(' ==> ')).sort()).toEqual(expected.sort());
    }
    // Known edges of the example: a construct reference, and CRD edges without one.
    const dev = architectures.get('dev')!.flowchart;
    expect(dev.edges).toContain('s_longhorn --> s_rabbitmq');
    expect(dev.edges).toContain('s_rabbitmq_operators --> s_rabbitmq');
    expect(dev.edges).toContain('s_prometheus_operator_crds -.->|needs| s_longhorn');
    expect(dev.edges).toContain('s_cert_manager -.->|needs| s_rabbitmq_operators');
    expect(dev.edges.filter((e) => e.endsWith(' s_rabbitmq') && !e.includes(' ==> '))).toHaveLength(3);
  });

  it('draws every exposure as a host node routed to its service', () => {
    const dev = withExposedApp('dev');
    const { flowchart } = sectionsOf(renderPlatformDoc([dev]), 'Architecture').get('dev')!;
    const hosts = flowchart.subgraphs.get('hosts')!.members.filter((id) => flowchart.nodes.get(id)!.startsWith('exposed'));
    expect(hosts.map((id) => flowchart.nodes.get(id))).toEqual(['exposed-admin.dev.home.example.net', 'exposed.dev.home.example.net']);
    expect(hosts.map((id) => flowchart.classes.get(id))).toEqual(['host', 'host']);
    expect(flowchart.edges.filter((e) => e.endsWith(' ==> s_exposed_app'))).toEqual(hosts.map((id) => `${id} ==> s_exposed_app`));
    expect(flowchart.edges).toContain('s_longhorn --> s_exposed_app');
    // The shipped example: exactly the hosts its services expose.
    const shipped = sectionsOf(doc, 'Architecture').get('dev')!.flowchart;
    const exposed = example.find((e) => e.environment === 'dev')!.services.flatMap((s) => s.hosts);
    expect(exposed.length).toBeGreaterThan(0);
    expect(shipped.subgraphs.get('hosts')!.members.map((id) => shipped.nodes.get(id)).sort()).toEqual([...exposed].sort());
  });

  it('escapes labels and table cells: any text stays inside its quotes and its cell', () => {
    expect(label(NASTY)).toMatch(SAFE_LABEL);
    expect(decode(label(NASTY))).toBe(NASTY.replace(/\s+/g, ' '));
    expect(label('é ✓ 😀')).toBe('"#233; #10003; #128512;"');

    const rendered = renderPlatformDoc([withExposedApp('dev')]);
    const { flowchart, text } = sectionsOf(rendered, 'Deployment sequence').get('dev')!;
    expect(flowchart.nodes.get('c_exposed_app')).toBe(NASTY);
    const row = text.split('\n').find((l) => l.startsWith('| 2 | exposed-app |'))!;
    expect(row.split(/(?<!\\)\|/)).toHaveLength(7);
    expect(row).not.toMatch(/<script>|[^\\][`*_]/);
    expect(row).toContain('&lt;script&gt;');
  });

  it('gives nodes stable ids that tell different names apart', () => {
    const names = ['cert-manager', 'cert.manager', 'cert--manager', 'certX2DXmanager', 'certDmanager', 'cert_manager', 'cert.20.manager', 'cert manager', 'end'];
    const ids = names.map((n) => nodeId('h', n));
    expect(new Set(ids).size).toBe(names.length);
    for (const id of ids) expect(id).toMatch(/^h_[A-Za-z0-9_]+$/);
    expect(nodeId('s', 'cert-manager')).toBe('s_cert_manager');
    expect(nodeId('h', 'grafana.home.example.net')).toBe('h_grafanaDhomeDexampleDnet');
  });

  it('folds environments whose diagrams are identical under one heading', () => {
    // The example: dev and staging differ only in what the diagrams do not show.
    expect(doc).toMatch(/^### dev, staging$/m);
    expect(doc).toMatch(/^### prod$/m);
    const dev = example.find((e) => e.environment === 'dev')!;
    const prod = example.find((e) => e.environment === 'prod')!;
    const twins: EnvironmentModel[] = [dev, prod, { ...dev, environment: 'qa' }];
    const folded = renderPlatformDoc(twins);
    // Sequence, architecture (the runbook is docs/disaster-recovery.md).
    expect(folded.match(/^### .*$/gm)).toEqual(['### dev, qa', '### prod', '### dev, qa', '### prod']);
    expect(folded.match(/^```mermaid$/gm)).toHaveLength(4);
    // Exposures are per domain: the same service exposed in two environments draws two diagrams.
    const exposed = renderPlatformDoc([withExposedApp('dev'), withExposedApp('staging')]);
    expect(exposed.match(/^### .*$/gm)).toEqual(['### dev, staging', '### dev', '### staging']);
  });

  it('is deterministic: the same bytes from another synthesis and from services in any order', () => {
    const again = synthesizePlatforms(platformText(), BUILTIN_CATALOG, { fresh: true }).map((s) => s.env);
    expect(renderPlatformDoc(again)).toBe(doc);
    const shuffled = example.map((env) => ({ environment: env.environment, services: [...env.services].reverse() }));
    expect(renderPlatformDoc(shuffled)).toBe(doc);
  });
});

describe('writing docs/platform.md', () => {
  it('synth writes it beside the output directory, or where --docs says; --env leaves it alone', () => {
    const dir = tempDir();
    expect(runMain(['--config', PLATFORM_FIXTURE, '--out', join(dir, 'k8s')]).status).toBe(0);
    expect(readFileSync(join(dir, 'docs', 'platform.md'), 'utf8')).toBe(doc);

    const custom = join(dir, 'elsewhere', 'diagrams.md');
    expect(runMain(['--config', PLATFORM_FIXTURE, '--out', join(dir, 'k8s'), '--docs', custom]).status).toBe(0);
    expect(readFileSync(custom, 'utf8')).toBe(doc);

    const previous = `${PLATFORM_DOC_HEADER}previous\n`;
    writeFileSync(join(dir, 'docs', 'platform.md'), previous);
    expect(runMain(['--config', PLATFORM_FIXTURE, '--out', join(dir, 'k8s'), '--env', 'prod']).status).toBe(0);
    expect(readFileSync(join(dir, 'docs', 'platform.md'), 'utf8')).toBe(previous);
    expect([...readTree(dir).keys()].filter((p) => p.includes('~synth-'))).toEqual([]);
  });

  it('a config error leaves it untouched', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'docs'));
    const previous = `${PLATFORM_DOC_HEADER}previous\n`;
    writeFileSync(join(dir, 'docs', 'platform.md'), previous);
    const config = platformObject();
    config.environments.prod.services.longhorn.replicas = 'three';
    writeFileSync(join(dir, 'homelab.yaml'), toYamlText(config));

    const result = runMain(['--config', join(dir, 'homelab.yaml'), '--out', join(dir, 'k8s')]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain('environments.prod.services.longhorn.replicas');
    expect(readTree(dir)).toEqual(new Map([['docs/platform.md', previous], ['homelab.yaml', toYamlText(config)]]));
  });

  it('a failing write leaves it untouched, and replaces it together with the output otherwise', () => {
    const dir = tempDir();
    const docs = join(dir, 'docs', 'platform.md');
    mkdirSync(join(dir, 'docs'));
    const previous = `${PLATFORM_DOC_HEADER}previous\n`;
    writeFileSync(docs, previous);
    const broken = [{ environment: 'dev', files: new Map([['a/b.yaml', 'x'], ['a/b.yaml/c.yaml', 'conflict']]) }];
    const documents = [{ path: docs, content: `${PLATFORM_DOC_HEADER}new\n`, header: PLATFORM_DOC_HEADER }];

    expect(() => writeOutput(broken, { outdir: join(dir, 'k8s'), documents })).toThrow();
    expect(readTree(dir)).toEqual(new Map([['docs/platform.md', previous]]));

    writeOutput([{ environment: 'dev', files: new Map([['a/b.yaml', 'x']]) }], { outdir: join(dir, 'k8s'), documents });
    expect(readTree(dir)).toEqual(new Map([['docs/platform.md', documents[0].content], ['k8s/dev/a/b.yaml', 'x']]));
  });
});
