/**
 * Manifests rendered once and reused. A synth renders most objects three times (the needs
 * analysis before and after secret delivery, then the output), and after the first time the
 * passes only add objects and change the metadata of existing ones (sync options, waves): a
 * manifest is rendered again only when its object's metadata or render patches changed since.
 * test/output.test.ts proves every reused manifest equal to a fresh render after a whole synth.
 */
import { ApiObject, JsonPatch } from 'cdk8s';

/**
 * The state of cdk8s' ApiObjectMetadataDefinition (cdk8s 2.70) that its toJson() reads: what
 * `addLabel`, `addAnnotation` and the other setters change.
 */
interface MetadataState {
  readonly name?: string;
  readonly namespace?: string;
  readonly labels: Readonly<Record<string, unknown>>;
  readonly annotations: Readonly<Record<string, unknown>>;
  readonly finalizers: readonly unknown[];
  readonly ownerReferences: readonly unknown[];
  readonly _additionalAttributes: Readonly<Record<string, unknown>>;
}

interface Rendered {
  /** A copy of the metadata state it was rendered with (one level deep). */
  readonly metadata: MetadataState;
  /** How many render patches there were. */
  readonly patches: number;
  readonly manifest: any;
}

export class RenderedManifests {
  private readonly rendered = new WeakMap<ApiObject, Rendered>();

  /**
   * The object's manifest with the patches applied: the one rendered before while the metadata
   * and patches are as they were, unless `fresh`. Treat it as read-only (its top level and
   * metadata are frozen).
   */
  manifestOf(object: ApiObject, patches: readonly JsonPatch[], fresh: boolean): any {
    const state = object.metadata as unknown as MetadataState;
    const before = this.rendered.get(object);
    if (!fresh && before && before.patches === patches.length && sameMetadata(state, before.metadata)) return before.manifest;
    const manifest = patches.length > 0 ? JsonPatch.apply(object.toJson(), ...patches) : object.toJson();
    Object.freeze(manifest.metadata);
    this.rendered.set(object, { metadata: copyOf(state), patches: patches.length, manifest: Object.freeze(manifest) });
    return manifest;
  }
}

function copyOf(state: MetadataState): MetadataState {
  return {
    name: state.name,
    namespace: state.namespace,
    labels: { ...state.labels },
    annotations: { ...state.annotations },
    finalizers: [...state.finalizers],
    ownerReferences: [...state.ownerReferences],
    _additionalAttributes: { ...state._additionalAttributes },
  };
}

function sameMetadata(state: MetadataState, copy: MetadataState): boolean {
  return (
    state.name === copy.name &&
    state.namespace === copy.namespace &&
    sameEntries(state.labels, copy.labels) &&
    sameEntries(state.annotations, copy.annotations) &&
    sameItems(state.finalizers, copy.finalizers) &&
    sameItems(state.ownerReferences, copy.ownerReferences) &&
    sameEntries(state._additionalAttributes, copy._additionalAttributes)
  );
}

function sameEntries(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  let count = 0;
  for (const key in a) {
    if (a[key] !== b[key] || !(key in b)) return false;
    count += 1;
  }
  return count === Object.keys(b).length;
}

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
