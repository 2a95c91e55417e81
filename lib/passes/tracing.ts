/**
 * The tracing pass: where the platform has a trace receiver, every declared trace emission is
 * handed the receiver's OTLP endpoint for its protocol (a capability getting its part, as the
 * dashboard host gets the dashboards). Without a receiver nothing is configured and nothing
 * sends. The NetworkPolicies of each connection come from the network-policies pass (traces()).
 */
import type { Platform } from '../model/platform';
import { isTraceEmitter, isTraceReceiver, TraceEmission, TraceEmitter, TraceReceiver } from '../model/tracing';

/** Every emission with the receiver it sends to, where there is one. */
export function* traceConnections(platform: Platform): Generator<{ emitter: TraceEmitter; emission: TraceEmission; receiver: TraceReceiver }> {
  const receiver = platform.services.find(isTraceReceiver);
  if (!receiver) return;
  for (const emitter of platform.services.filter(isTraceEmitter)) {
    for (const emission of emitter.traceEmissions) yield { emitter, emission, receiver };
  }
}

export function connectTraceEmitters(platform: Platform): void {
  for (const { emission, receiver } of traceConnections(platform)) emission.connect(receiver.otlpEndpoints[emission.protocol]);
}
