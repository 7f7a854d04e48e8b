// Type declarations of mcl-election (index.js).
import type { Client } from '@grpc/grpc-js';

/** Why leadership ended: the reason carried by `leadership.signal`, and `leadership.cause`. */
export declare const Cause: Readonly<{
  /** The sidecar said LOST, FOLLOWER or NO_LEADER. */
  LOST: 'lost';
  /** The validity bound (minus stopMarginMs) passed without a renewal. */
  DEADLINE: 'deadline';
  /** The Campaign stream broke or ended (sidecar restart, connection loss). */
  STREAM_ENDED: 'stream ended';
  /** The campaign was stopped through its AbortSignal (it resigns). */
  STOPPED: 'stopped';
}>;
export type CauseValue = (typeof Cause)[keyof typeof Cause];

export interface CampaignOptions {
  /** The lock's name (a DNS-1123 subdomain). Required. */
  name: string;
  /** The lock's namespace; empty: the sidecar's own. */
  namespace?: string;
  /** This candidate's identity; empty: the sidecar's default (pod name + uid). */
  identity?: string;
  /** The sidecar; default $MCL_SIDECAR_ADDR, else 127.0.0.1:7400. Ignored with `client`. */
  addr?: string;
  /** An mcl.v1.Election client to use instead of dialling `addr` (see ElectionClient()). */
  client?: Client;
  /** Lease duration sent with the Campaign, in seconds [2, 3600]; 0: the sidecar's default. */
  leaseDurationSeconds?: number;
  /** How long before the bound the leader's signal aborts (default 100 ms). */
  stopMarginMs?: number;
  /**
   * Accept LEADER events without a validity bound (sidecars older than this library) and lead
   * until LOST or the stream's end. Unsafe when the sidecar freezes. Default false: such an event
   * ends the campaign with NoValidityError.
   */
  allowMissingValidity?: boolean;
  /** Reconnect backoff bounds after the stream broke (defaults 100 ms and 5 s, with jitter). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Called for each event, in order: after the leader function has settled for an event that ends
   * leadership, and before it starts for a LEADER. The library adds local LOST events (bound
   * passed, stream ended while leading), so LEADER..LOST pairs are exactly when it may run.
   */
  onEvent?: (event: LeadershipEvent) => void;
  /** Diagnostics (reconnects, late LEADER events); default: console.error. */
  onLog?: (message: string) => void;
}

export interface LeadershipEvent {
  state: 'LEADER' | 'FOLLOWER' | 'NO_LEADER' | 'LOST' | 'STATE_UNSPECIFIED';
  leader: string;
  cluster: string;
  fencingToken: bigint;
  reason: string;
  /** CLOCK_MONOTONIC (process.hrtime.bigint()) on receipt, or when the library decided. */
  receivedNs: bigint;
  /** The bound of a LEADER on CLOCK_MONOTONIC. */
  validUntilNs?: bigint;
  /** A LEADER for the grant already held, with a later bound. */
  renewal: boolean;
  /** A LOST made by the library. */
  local: boolean;
}

/** One term of leadership, handed to the leader function. */
export interface Leadership {
  /** The fencing token of the grant: pass it to storage that must reject deposed leaders. */
  readonly token: bigint;
  /** Aborts the moment leadership ends; the library then waits for the function to settle. */
  readonly signal: AbortSignal;
  /** Why it ended, once it has. */
  readonly cause: CauseValue | undefined;
  /** The current bound on CLOCK_MONOTONIC (moves forward with renewals). */
  readonly validUntilNs: bigint;
  /** True while this term lasts; consults CLOCK_MONOTONIC against the bound. */
  isLeader(): boolean;
}

export type LeaderFunction<T> = (leadership: Leadership) => T | Promise<T>;

export declare class Campaign {
  constructor(options: CampaignOptions);
  /**
   * Campaigns until `signal` aborts (resigns; resolves undefined), until the leader function
   * settles on its own while leading (resigns; settles as it did), or until a CampaignError.
   */
  run<T>(fn: LeaderFunction<T>, opts?: { signal?: AbortSignal }): Promise<T | undefined>;
  /** Whether this candidate leads now (consults the bound). */
  isLeader(): boolean;
  /** The token of the grant this candidate leads under now, or undefined. */
  readonly fencingToken: bigint | undefined;
  /** The bound of the current leadership (CLOCK_MONOTONIC ns), or undefined. */
  readonly validUntilNs: bigint | undefined;
  /** Closes the connection it dialled. */
  close(): void;
}

/** new Campaign(options).run(fn, opts), closing the campaign afterwards. */
export declare function runWhileLeader<T>(options: CampaignOptions, fn: LeaderFunction<T>,
  opts?: { signal?: AbortSignal }): Promise<T | undefined>;

/** The campaign ended for good (bad input, another live candidacy of this identity, ...). */
export declare class CampaignError extends Error {
  /** The gRPC status code, when the sidecar answered with one. */
  code?: number;
}
/** App and sidecar do not share CLOCK_MONOTONIC: never leads. */
export declare class ClockError extends CampaignError {
  receivedNs: bigint;
  sentNs: bigint;
}
/** The sidecar is older than this library (LEADER without a validity bound). */
export declare class NoValidityError extends CampaignError {}

/** CLOCK_MONOTONIC in nanoseconds (process.hrtime.bigint()). */
export declare function monotonicNs(): bigint;
/** The mcl.v1.Election client class, loaded from the bundled .proto (int64 fields as strings). */
export declare function ElectionClient(): new (address: string, credentials: unknown) => Client;
export declare const DEFAULT_ADDR: string;
