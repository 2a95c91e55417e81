/**
 * Traces as a capability: a service whose pods can send spans over OTLP declares each sender
 * (`TraceEmitter.traceEmissions`); the platform's trace receiver (Alloy, with Tempo behind it)
 * says where OTLP arrives. The tracing pass (lib/passes/tracing.ts) hands every emission the
 * receiver's endpoint, and the network-policies pass derives the connection in both directions.
 *
 * A capability rather than a typed reference: the catalog lets a service reference only
 * entries listed before it, and most emitters (Argo CD, Triton, Ray) come before the receiver.
 * Emitters never wait for the receiver either: spans sent before it exists are lost, nothing
 * else is.
 */
import type { NetworkPeer } from './network';
import type { HomelabService } from './service';

/** OTLP over gRPC (an endpoint `host:port`) or over HTTP (a base URL `http://host:port`). */
export type OtlpProtocol = 'grpc' | 'http';

/** One group of a service's pods that sends traces. */
export interface TraceEmission {
  /** Names the NetworkPolicies (`allow-traces-<service>-<name>`, `egress-traces-<name>`): unique in the service. */
  readonly name: string;
  /** Labels of the pods that send (`{}`: every pod of the namespace). */
  readonly podSelector: Readonly<Record<string, string>>;
  readonly protocol: OtlpProtocol;
  /**
   * Points the sender's configuration (its values, environment or arguments) at the receiver:
   * `host:port` for gRPC, `http://host:port` (no path) for HTTP.
   */
  readonly connect: (endpoint: string) => void;
}

/** A service some of whose pods send traces once they are told where to. */
export interface TraceEmitter extends HomelabService {
  readonly traceEmissions: readonly TraceEmission[];
}

export function isTraceEmitter(service: HomelabService): service is TraceEmitter {
  return Array.isArray((service as Partial<TraceEmitter>).traceEmissions);
}

/** The service that receives OTLP inside the cluster and stores or forwards the traces. */
export interface TraceReceiver extends HomelabService {
  /** The receiving pods. */
  readonly traceReceiverPods: NetworkPeer;
  /** Port the receiving pods listen on, per protocol. */
  readonly otlpPorts: Readonly<Record<OtlpProtocol, number>>;
  /** What an emission of each protocol is given (`TraceEmission.connect`). */
  readonly otlpEndpoints: Readonly<Record<OtlpProtocol, string>>;
}

export function isTraceReceiver(service: HomelabService): service is TraceReceiver {
  return 'otlpEndpoints' in service && (service as Partial<TraceReceiver>).otlpEndpoints !== undefined;
}
