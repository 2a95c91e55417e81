/** The deployment sequence of the homelab, first to last. */
export enum Layer {
  /** Argo CD itself: already running when anything else syncs. */
  GITOPS = 'gitops',
  STORAGE = 'storage',
  /**
   * What every later layer builds on and the seeds' layers do not place first: certificates
   * (cert-manager), secrets (Vault, External Secrets). After storage, where Vault keeps its
   * data; before the data mesh, whose operators need certificates, and before observability and
   * automation, which read secrets (ADR 23).
   */
  FOUNDATION = 'foundation',
  DATA_MESH = 'data-mesh',
  AI = 'ai',
  OBSERVABILITY = 'observability',
  AUTOMATION = 'automation',
  SECURITY = 'security',
  NETWORKING = 'networking',
  /** The end-to-end verification: after everything else. */
  VERIFICATION = 'verification',
}

export const LAYER_ORDER: readonly Layer[] = [
  Layer.GITOPS,
  Layer.STORAGE,
  Layer.FOUNDATION,
  Layer.DATA_MESH,
  Layer.AI,
  Layer.OBSERVABILITY,
  Layer.AUTOMATION,
  Layer.SECURITY,
  Layer.NETWORKING,
  Layer.VERIFICATION,
];
