import { describe, expect, it } from 'vitest';
import { helmRelease } from '../charts/helm-release';
import { CHARTS } from '../charts/versions';

describe('helmRelease', () => {
  it('pairs a chart with its pinned version and only accepts that chart\'s values', () => {
    const release = helmRelease('longhorn', { preUpgradeChecker: { jobEnabled: false } });
    expect(release).toEqual({ chart: CHARTS.longhorn, values: { preUpgradeChecker: { jobEnabled: false } }, releaseName: undefined });
    // The checks below are made by `tsc --noEmit` (npm run build): each line must not compile.
    // @ts-expect-error Argo CD values are not Longhorn values
    helmRelease('longhorn', { configs: { params: { 'server.insecure': true } } });
    // @ts-expect-error a string where the chart wants a boolean
    helmRelease('longhorn', { preUpgradeChecker: { jobEnabled: 'false' } });
    // @ts-expect-error a chart that is not pinned in charts/versions.ts
    helmRelease('unpinnedChart', {});
  });
});
