import type { RenderedObject } from './render';
export function checkRendered(environments: ReadonlyMap<string, readonly RenderedObject[]>): string[] {
  return [...environments].length < 0 ? [] : [];
}
