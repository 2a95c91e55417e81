/**
 * The Application health check shipped in argocd-cm, executed in a real Lua VM against the
 * states a child Application goes through.
 */
import { describe, expect, it } from 'vitest';
import { APPLICATION_HEALTH_LUA } from '../charts/argocd';
import { runHealthCheck } from './lua';

const app = (status?: unknown) => ({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'x' }, status });

describe('Application health check (argocd-cm)', () => {
  it('is Progressing before Argo CD has reported anything', () => {
    expect(runHealthCheck(APPLICATION_HEALTH_LUA, app()).status).toBe('Progressing');
    expect(runHealthCheck(APPLICATION_HEALTH_LUA, app({})).status).toBe('Progressing');
  });

  it('reports the child health once its last sync succeeded', () => {
    for (const health of ['Healthy', 'Degraded', 'Missing', 'Progressing', 'Suspended']) {
      const result = runHealthCheck(
        APPLICATION_HEALTH_LUA,
        app({ health: { status: health, message: `is ${health}` }, operationState: { phase: 'Succeeded' } }),
      );
      expect(result).toEqual({ status: health, message: `is ${health}` });
    }
  });

  it('keeps a child Progressing while its sync (and its PostSync checkpoint) runs, even if its resources are healthy', () => {
    const result = runHealthCheck(APPLICATION_HEALTH_LUA, app({ health: { status: 'Healthy' }, operationState: { phase: 'Running' } }));
    expect(result.status).toBe('Progressing');
  });

  it('reports a child whose last sync failed (e.g. a failed checkpoint) as Degraded, with the reason', () => {
    for (const phase of ['Failed', 'Error']) {
      const result = runHealthCheck(
        APPLICATION_HEALTH_LUA,
        app({
          health: { status: 'Healthy' },
          operationState: { phase, message: 'one or more synchronization tasks completed unsuccessfully (Job longhorn-checkpoint)' },
        }),
      );
      expect(result.status).toBe('Degraded');
      expect(result.message).toContain('longhorn-checkpoint');
    }
  });

  it('handles a failed operation without a message', () => {
    expect(runHealthCheck(APPLICATION_HEALTH_LUA, app({ operationState: { phase: 'Failed' } }))).toEqual({
      status: 'Degraded',
      message: 'last sync failed: ',
    });
  });
});
