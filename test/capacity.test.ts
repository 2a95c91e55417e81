import { describe, expect, it } from 'vitest';
import type { ResourceDemand } from '../lib/model/capacity';
import { checkCapacity } from '../lib/passes/capacity';
import type { NodeConfig } from '../lib/model/config/environment';
import { UserError } from '../lib/util/errors';
import { gpuPlacement } from '../lib/model/inventory';
import { parseQuantity, sumCores } from '../lib/util/quantity';
import { platformObject, synthesizeText, toYamlText } from './support';

const node = (overrides: Partial<NodeConfig> = {}): NodeConfig => ({ role: 'worker', cpu: '8', memory: '32Gi', gpus: 0, labels: {}, taints: [], ...overrides });
const demand = (overrides: Partial<ResourceDemand>): ResourceDemand => ({ service: 's', workload: 'w', replicas: 1, cpu: '1', memory: '1Gi', ...overrides });

describe('parseQuantity', () => {
  it('reads CPU and byte quantities', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('4Gi')).toBe(4 * 2 ** 30);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(() => parseQuantity('4GB')).toThrow('not a quantity: 4GB');
  });

  it('adds CPU in whole millicores, each rounded up as Kubernetes counts it', () => {
    expect(sumCores([{ quantity: '100m' }, { quantity: '200m' }, { quantity: '0.3' }])).toBe(0.6);
    expect(sumCores([{ quantity: '1.1', times: 3 }])).toBe(3.3);
    expect(sumCores([{ quantity: '0.0004', times: 3 }])).toBe(0.003);
  });
});

describe('checkCapacity', () => {
  const nodes = { a: node(), gpu: node({ gpus: 2, cpu: '16', memory: '64Gi' }) };

  it('sums requests times replicas against the inventory', () => {
    const report = checkCapacity([demand({ replicas: 3, cpu: '500m', memory: '2Gi', gpus: 0 }), demand({ gpus: 2 })], nodes);
    expect(report.requested).toEqual({ cpuCores: 2.5, memoryBytes: 7 * 2 ** 30, gpus: 2 });
    expect(report.available).toEqual({ cpuCores: 24, memoryBytes: 96 * 2 ** 30, gpus: 2, maxGpusPerNode: 2 });
  });

  it('fails on more GPUs than the inventory has, naming every GPU consumer', () => {
    const demands = [demand({ service: 'triton', workload: 'server', replicas: 2, gpus: 1 }), demand({ service: 'ray', workload: 'gpu workers', replicas: 3, gpus: 1 })];
    expect(() => checkCapacity(demands, nodes)).toThrow(UserError);
    expect(() => checkCapacity(demands, nodes)).toThrow('nodes: gpus: the services request 5, the nodes have 2 (ray/gpu workers 3 x 1, triton/server 2 x 1)');
  });

  it('names the biggest consumers first and counts the rest', () => {
    const many = Array.from({ length: 12 }, (_, i) => demand({ service: `app-${i}`, cpu: `${i + 1}`, memory: '1Mi' }));
    expect(() => checkCapacity(many, nodes)).toThrow(/cpu: the services request 78 cores, the nodes have 24 cores \(app-11\/w 1 x 12 cores, app-10\/w 1 x 11 cores, .*, app-4\/w 1 x 5 cores and 4 more\)/);
  });

  it('fails on an inventory without GPUs', () => {
    expect(() => checkCapacity([demand({ service: 'triton', gpus: 1 })], { a: node() })).toThrow('the services request 1, the nodes have 0');
  });

  it('fails when one pod needs more GPUs than any single node has', () => {
    const spread = { g1: node({ gpus: 1 }), g2: node({ gpus: 1 }) };
    expect(() => checkCapacity([demand({ service: 'triton', gpus: 2 })], spread)).toThrow('triton/w needs 2 GPUs in one pod, the largest node has 1');
  });

  it('counts time-sliced GPUs as the device plugin advertises them, one per pod', () => {
    const oneGpu = { g: node({ gpus: 1 }) };
    expect(checkCapacity([demand({ replicas: 2, gpus: 1 })], oneGpu, 2).available.gpus).toBe(2);
    expect(() => checkCapacity([demand({ replicas: 3, gpus: 1 })], oneGpu, 2)).toThrow(
      'nodes: gpus: the services request 3, the nodes have 2 (1 GPUs time-sliced 2 ways) (s/w 3 x 1)',
    );
    expect(() => checkCapacity([demand({ service: 'triton', gpus: 2 })], { g: node({ gpus: 2 }) }, 2)).toThrow(
      'triton/w requests 2 GPUs per pod; time-sliced GPUs are handed out one per pod',
    );
  });

  it('takes node CPU as Kubernetes reports it allocatable, in millicores or fractions too', () => {
    expect(checkCapacity([demand({ cpu: '7' })], { a: node({ cpu: '3800m' }), b: node({ cpu: '3.5' }) }).available.cpuCores).toBe(7.3);
    expect(() => checkCapacity([demand({ cpu: '7400m' })], { a: node({ cpu: '3800m' }), b: node({ cpu: '3.5' }) })).toThrow('the nodes have 7.3 cores');
  });

  it('fails on CPU and memory beyond the inventory', () => {
    expect(() => checkCapacity([demand({ replicas: 30, cpu: '1', memory: '4Gi' })], nodes)).toThrow(
      /cpu: the services request 30 cores, the nodes have 24 cores[\s\S]*memory: the services request 120\.0Gi, the nodes have 96\.0Gi/,
    );
  });
});

describe('checkCapacity with tainted nodes', () => {
  const tainted = (effect: NodeConfig['taints'][number]['effect']) => node({ cpu: '16', taints: [{ key: 'dedicated', effect }] });

  it("counts the pods that tolerate no taint against the untainted nodes, with the DaemonSets' share there", () => {
    // 24 cores in all, 8 of them untainted: 7 cores and the DaemonSet's one pod there fit, 8 and it do not.
    const nodes = { a: node(), t: tainted('NoSchedule') };
    const daemonSet = demand({ service: 'd', workload: 'agent', replicas: 2, cpu: '1', memory: '1Gi', placement: 'every-node' });
    expect(() => checkCapacity([demand({ cpu: '7' }), daemonSet], nodes)).not.toThrow();
    expect(() => checkCapacity([demand({ cpu: '8' }), daemonSet], nodes)).toThrow(
      'nodes: cpu: the pods that can run only there request 9 cores on the nodes without a NoSchedule or NoExecute taint (a), which have 8 cores (s/w 1 x 8 cores, d/agent 1 x 1 cores)',
    );
    // NoExecute keeps pods off as NoSchedule does; PreferNoSchedule does not.
    expect(() => checkCapacity([demand({ cpu: '9' })], { a: node(), t: tainted('NoExecute') })).toThrow(/the pods that can run only there request 9 cores/);
    expect(() => checkCapacity([demand({ cpu: '9' })], { a: node(), t: tainted('PreferNoSchedule') })).not.toThrow();
  });

  it('counts the GPU workloads with them where a GPU node is untainted, and checks the untainted and GPU nodes together', () => {
    // The GPU pod takes 7 of g's 8 cores: 10 more pods do not fit g and w (16), though cp's 8 make the total fit.
    const controlPlane = node({ role: 'control-plane', taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] });
    const pods = [demand({ service: 'triton', cpu: '7', gpus: 1 }), demand({ replicas: 10, cpu: '1' })];
    expect(() => checkCapacity(pods, { cp: controlPlane, g: node({ gpus: 1 }), w: node() })).toThrow(
      'nodes: cpu: the pods that can run only there request 17 cores on the nodes without a NoSchedule or NoExecute taint (g, w), which have 16 cores',
    );
    // The GPU node tainted too: the pods without tolerations have w alone, and with the GPU pod, g and w.
    const taintedGpu = node({ gpus: 1, taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] });
    expect(() => checkCapacity([demand({ service: 'triton', cpu: '7', gpus: 1 }), demand({ replicas: 8, cpu: '1' })], { cp: controlPlane, g: taintedGpu, w: node() })).not.toThrow();
    expect(() => checkCapacity([demand({ service: 'triton', cpu: '9', gpus: 1 }), demand({ replicas: 8, cpu: '1' })], { cp: controlPlane, g: taintedGpu, w: node() })).toThrow(
      'nodes: cpu: the pods that can run only there request 17 cores on the nodes without such a taint and the GPU nodes (w, g), which have 16 cores',
    );
  });

  it('leaves the GPU nodes to the GPU workloads, which tolerate their taints', () => {
    const nodes = { a: node(), g: node({ gpus: 1, cpu: '16', taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] }) };
    const gpuWorkload = demand({ service: 'triton', cpu: '12', gpus: 1 });
    const plugin = demand({ service: 'nvidia-device-plugin', workload: 'device-plugin', cpu: '1', placement: 'gpu-nodes' });
    expect(() => checkCapacity([gpuWorkload, plugin, demand({ cpu: '8' })], nodes)).not.toThrow();
    expect(() => checkCapacity([gpuWorkload, plugin, demand({ cpu: '8', memory: '33Gi' })], nodes)).toThrow(
      'nodes: memory: the pods that can run only there request 33.0Gi on the nodes without a NoSchedule or NoExecute taint (a), which have 32.0Gi (s/w 1 x 33.0Gi)',
    );
  });
});

describe('gpuPlacement', () => {
  it('lists the GPU nodes and tolerates each of their taints once', () => {
    const placement = gpuPlacement({
      cpu: node({ labels: { zone: 'a' } }),
      g1: node({ gpus: 1, labels: { zone: 'a' }, taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] }),
      g2: node({ gpus: 2, labels: { zone: 'b' }, taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }, { key: 'gpu', value: 'big', effect: 'NoExecute' }] }),
    });
    expect(placement).toEqual({
      nodes: ['g1', 'g2'],
      tolerations: [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'gpu', operator: 'Equal', value: 'big', effect: 'NoExecute' },
      ],
    });
  });

  it('is undefined without GPU nodes', () => {
    expect(gpuPlacement({ a: node() })).toBeUndefined();
  });
});

describe('capacity in synth', () => {
  it('fails the synth of an environment whose apps do not fit its nodes, naming them', () => {
    const config = platformObject();
    config.apps['node-red'].resources = { requests: { cpu: '4', memory: '1Gi' }, limits: { cpu: '4', memory: '1Gi' } };
    expect(() => synthesizeText(toYamlText(config))).toThrow(/nodes: cpu: the services request \d+\.\d+ cores, the nodes have 4 cores \(node-red\/app 1 x 4 cores, /);
  });

  it("fails it where the pods fit all nodes but not those without taints: the platform's DaemonSets and GPU pods placed as they run", () => {
    const config = platformObject();
    // Prod: cp-1 (4 cores) and worker-1 left for the pods without tolerations once the GPU node is tainted (and Vault on one of them).
    config.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }];
    config.environments.prod.services.vault.replicas = 1;
    expect(() => synthesizeText(toYamlText(config))).not.toThrow();
    config.environments.prod.nodes = { ...config.environments.prod.nodes, 'worker-1': { cpu: 2 } };
    expect(() => synthesizeText(toYamlText(config))).toThrow(/nodes: cpu: the pods that can run only there request \d+\.\d+ cores on the nodes without a NoSchedule or NoExecute taint \(cp-1, worker-1\), which have 6 cores/);
  });
});
