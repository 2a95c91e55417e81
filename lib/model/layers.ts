/** The deployment sequence of the homelab, first to last. */
export enum Layer {
  /** Argo CD itself: already running when anything else syncs. */
  GITOPS = 'gitops',
  STORAGE = 'storage',
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
  Layer.DATA_MESH,
  Layer.AI,
  Layer.OBSERVABILITY,
  Layer.AUTOMATION,
  Layer.SECURITY,
  Layer.NETWORKING,
  Layer.VERIFICATION,
];
