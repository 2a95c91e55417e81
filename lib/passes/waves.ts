/**
 * Sync waves from the dependency graph. Pure functions over service names, so the rules
 * are testable without constructs: a service's wave is one more than the highest wave
 * among its dependencies (independent services share a wave and sync in parallel).
 */
import { UserError } from '../util/errors';
import { LAYER_ORDER, Layer } from '../model/layers';
import { findCycle } from '../util/cycles';

export interface GraphNode {
  readonly name: string;
  readonly layer: Layer;
  /** Names of the services this one depends on. */
  readonly dependsOn: readonly string[];
}

export type WaveMode = 'dependencies' | 'sequential';

export function computeWaves(nodes: readonly GraphNode[], mode: WaveMode): Map<string, number> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      if (!byName.has(dep)) throw new Error(`${node.name} depends on unknown service ${dep}`);
    }
  }
  const cycle = findCycle(nodes, byName);
  if (cycle) throw new UserError([`dependency cycle: ${cycle.join(' -> ')}`]);
  return mode === 'sequential' ? sequentialWaves(nodes, byName) : dependencyWaves(nodes, byName);
}

function dependencyWaves(nodes: readonly GraphNode[], byName: Map<string, GraphNode>): Map<string, number> {
  const waves = new Map<string, number>();
  const waveOf = (node: GraphNode): number => {
    const known = waves.get(node.name);
    if (known !== undefined) return known;
    const wave = Math.max(-1, ...node.dependsOn.map((d) => waveOf(byName.get(d)!))) + 1;
    waves.set(node.name, wave);
    return wave;
  };
  for (const node of nodes) waveOf(node);
  return waves;
}

/**
 * The source documents' strict order: every layer starts after all earlier layers are up.
 * Inside a layer, dependencies still order services and independent ones share a wave.
 */
function sequentialWaves(nodes: readonly GraphNode[], byName: Map<string, GraphNode>): Map<string, number> {
  const rank = (n: GraphNode) => LAYER_ORDER.indexOf(n.layer);
  const problems: string[] = [];
  for (const node of nodes) {
    for (const dep of node.dependsOn.map((d) => byName.get(d)!)) {
      if (rank(dep) > rank(node)) {
        problems.push(
          `waves: sequential: ${node.name} (layer ${node.layer}) depends on ${dep.name} (layer ${dep.layer}), a later layer; use waves: dependencies or change a layer`,
        );
      }
    }
  }
  if (problems.length > 0) throw new UserError(problems);
  const layered = nodes.map((node) => ({
    ...node,
    dependsOn: [...node.dependsOn, ...nodes.filter((other) => rank(other) < rank(node)).map((other) => other.name)],
  }));
  return dependencyWaves(layered, new Map(layered.map((n) => [n.name, n])));
}
