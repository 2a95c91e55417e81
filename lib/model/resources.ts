/** Requests and limits, the way Helm values, low-level k8s.* and cdk8s-plus each take them. */
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import { k8s } from 'cdk8s-plus-34';
import type { Resources } from './config/primitives';
import { parseQuantity } from '../util/quantity';

export type { Resources };

/** Resources for Helm values (plain strings). */
export function resources(cpuRequest: string, memoryRequest: string, cpuLimit: string, memoryLimit: string): Resources {
  return { requests: { cpu: cpuRequest, memory: memoryRequest }, limits: { cpu: cpuLimit, memory: memoryLimit } };
}

/** For low-level k8s.* constructs. */
export function toResourceRequirements(r: Resources): k8s.ResourceRequirements {
  return {
    requests: { cpu: k8s.Quantity.fromString(r.requests.cpu), memory: k8s.Quantity.fromString(r.requests.memory) },
    limits: { cpu: k8s.Quantity.fromString(r.limits.cpu), memory: k8s.Quantity.fromString(r.limits.memory) },
  };
}

/** A quantity map for imported CRD classes, which type each one with a class of its own. */
export function quantities<Q>(type: { fromString(value: string): Q }, values: Readonly<Record<string, string>>): Record<string, Q> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, type.fromString(value)]));
}

/** For cdk8s-plus containers (quantities as validated by the config schema). */
export function toContainerResources(r: Resources): kplus.ContainerResources {
  return {
    cpu: { request: cpu(r.requests.cpu), limit: cpu(r.limits.cpu) },
    memory: { request: size(r.requests.memory), limit: size(r.limits.memory) },
  };
}

function cpu(quantity: string): kplus.Cpu {
  return quantity.endsWith('m') ? kplus.Cpu.millis(Number(quantity.slice(0, -1))) : kplus.Cpu.units(Number(quantity));
}

/** `512Mi`, `10Gi`, `1Ti` as a cdk8s Size (the config admits only whole Mi, Gi and Ti). */
export function size(quantity: string): Size {
  return Size.mebibytes(parseQuantity(quantity) / 2 ** 20);
}

/** Requests and limits of containers that share a pod, added up (for the capacity check). */
export function sumOfContainers(...parts: readonly Resources[]): Resources {
  const cores = (pick: (r: Resources) => string) => `${Math.round(parts.reduce((t, r) => t + parseQuantity(pick(r)), 0) * 1000)}m`;
  const mebibytes = (pick: (r: Resources) => string) => `${Math.ceil(parts.reduce((t, r) => t + parseQuantity(pick(r)), 0) / 2 ** 20)}Mi`;
  return {
    requests: { cpu: cores((r) => r.requests.cpu), memory: mebibytes((r) => r.requests.memory) },
    limits: { cpu: cores((r) => r.limits.cpu), memory: mebibytes((r) => r.limits.memory) },
  };
}
