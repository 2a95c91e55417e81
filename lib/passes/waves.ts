/**
 * Sync waves from the dependency graph. Pure functions over service names, so the rules
 * are testable without constructs: a service's wave is one more than the highest wave
 * among its dependencies (independent services share a wave and sync in parallel). A service
 * that awaits the operator (Vault until it is unsealed) holds back every later wave, so it
 * syncs no earlier than the last wave of the services that do not need it (ADR 23).
 */
import { UserError } from '../util/errors';
import { LAYER_ORDER, Layer } from '../model/layers';
import { findCycle } from '../util/cycles';

export interface GraphNode {
  readonly name: string;
  readonly layer: Layer;
  /** Names of the services this one depends on. */
  readonly dependsOn: readonly string[];
  /** Its Application stays unhealthy until the operator does a one-time step. @default false */
  readonly awaitsOperator?: boolean;
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

/**
 * One wave after the latest dependency. The services that need none of those awaiting the
 * operator come first (their set is closed under dependencies); each awaiting service then
 * syncs in their last wave at the earliest, so that only the services needing it wait for it.
 */
function dependencyWaves(nodes: readonly GraphNode[], byName: Map<string, GraphNode>): Map<string, number> {
  const waitsForOperator = new Map<string, boolean>();
  const waits = (node: GraphNode): boolean => {
    const known = waitsForOperator.get(node.name);
    if (known !== undefined) return known;
    const result = (node.awaitsOperator ?? false) || node.dependsOn.some((d) => waits(byName.get(d)!));
    waitsForOperator.set(node.name, result);
    return result;
  };
  const waves = new Map<string, number>();
  let lastFree = -1;
  const waveOf = (node: GraphNode): number => {
    const known = waves.get(node.name);
    if (known !== undefined) return known;
    const afterDependencies = Math.max(-1, ...node.dependsOn.map((d) => waveOf(byName.get(d)!))) + 1;
    const wave = node.awaitsOperator ? Math.max(afterDependencies, lastFree) : afterDependencies;
    waves.set(node.name, wave);
    return wave;
  };
  const free = nodes.filter((node) => !waits(node));
  for (const node of free) lastFree = Math.max(lastFree, waveOf(node));
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
