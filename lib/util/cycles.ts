/** Cycles in a dependency graph given as named nodes. */

export interface DependencyNode {
  readonly name: string;
  /** Names of the nodes this one depends on (all in the graph). */
  readonly dependsOn: readonly string[];
}

/** A dependency cycle as a closed path (`a -> b -> a`), or undefined. Deterministic: input order. */
export function findCycle<N extends DependencyNode>(nodes: readonly N[], byName: ReadonlyMap<string, N> = new Map(nodes.map((n) => [n.name, n]))): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of byName.get(name)!.dependsOn) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const node of nodes) {
    const cycle = visit(node.name);
    if (cycle) return cycle;
  }
  return undefined;
}
