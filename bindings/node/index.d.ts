// TypeScript declarations of the libwebhook Node binding (index.js).
/// <reference types="node" />
import { EventEmitter } from 'node:events';

/** The numbers of include/webhook/webhook.h, under their names there. */
export declare const constants: Readonly<{
  WH_OK: 0; WH_EINVAL: 1; WH_ENOMEM: 2; WH_ENOTFOUND: 3; WH_EEXIST: 4; WH_ESTATE: 5; WH_EFULL: 6;
  WH_ESTORE: 7; WH_ETIMEOUT: 8; WH_ESIGNATURE: 9; WH_ETIMESTAMP: 10; WH_EPOLICY: 11; WH_ERANGE: 12;
  WH_DELIVERED: 1; WH_RETRYING: 2; WH_FAILED: 3;
  WH_LOG_ERROR: 1; WH_LOG_WARN: 2; WH_LOG_INFO: 3; WH_LOG_DEBUG: 4;
  WH_REG_TENANT_MAX_ENDPOINTS: 1;
  WH_EP_ORDERED: 1; WH_EP_RATE_LIMIT: 2; WH_EP_TIMEOUT_MS: 3; WH_EP_RETRY_SCHEDULE: 4; WH_EP_PROXY: 5;
  WH_EP_CLIENT_CERT: 6;
  WH_OPT_WORKERS: 1; WH_OPT_MAX_IN_FLIGHT: 2; WH_OPT_MAX_PER_ENDPOINT: 3; WH_OPT_TIMEOUT_MS: 4;
  WH_OPT_CONNECT_TIMEOUT_MS: 5; WH_OPT_RETRY_SCHEDULE: 6; WH_OPT_ALLOW_PRIVATE_NETWORKS: 7;
  WH_OPT_QUEUE_LIMIT: 8; WH_OPT_USER_AGENT: 9; WH_OPT_CA_FILE: 10; WH_OPT_RETRY_JITTER_PCT: 11;
  WH_OPT_DISABLE_AFTER_MS: 12; WH_OPT_BREAKER_WINDOW_MS: 13; WH_OPT_BREAKER_MIN_REQUESTS: 14;
  WH_OPT_BREAKER_FAILURE_PCT: 15; WH_OPT_BREAKER_COOLDOWN_MS: 16; WH_OPT_THROTTLE_MIN_DELAY_MS: 17;
  WH_OPT_MAX_BODY_BYTES: 18; WH_OPT_RETENTION_DAYS: 19; WH_OPT_LEASE_MS: 20; WH_OPT_PROCESS_DEFAULT: 21;
  WH_OPT_RESULT_QUEUE: 22; WH_OPT_PROXY: 23;
  WH_ID_MAX: 64;
}>;

/** A libwebhook call failed. */
export declare class WebhookError extends Error {
  constructor(code: number, detail?: string);
  /** The WH_E* number (constants.WH_EINVAL, ...). */
  readonly code: number;
  /** Its name: "WH_EINVAL", ... */
  readonly codeName: string;
  /** What wh_error_last() said, or the binding's own message. */
  readonly detail: string;
}

/** An endpoint as wh_endpoint_get_json gives it. */
export interface Endpoint {
  id: string;
  name: string;
  url: string;
  description: string | null;
  enabled: boolean;
  filters: string[];
  headers: Record<string, string>;
  created_at: string;
  disabled_reason: string | null;
  tenant_id?: string | null;
  settings?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface EndpointSpec {
  name: string;
  url: string;
  description?: string | null;
  /** Patterns such as "people.*"; none: every event. */
  filters?: string[];
  /** Sent with every request. */
  headers?: Record<string, string>;
}

export interface EndpointSettings {
  ordered?: boolean;
  rateLimit?: number;
  timeoutMs?: number;
  retrySchedule?: number[] | string | null;
  proxy?: string | null;
  clientCert?: string | null;
}

export type Body = string | Buffer | Uint8Array;
export type HeaderBag =
  | Record<string, string | string[] | undefined>
  | Map<string, string | string[]>
  | { get(name: string): string | null | undefined; entries?(): IterableIterator<[string, string]> };

export declare class Registry {
  /** Release it (idempotent). Dispatchers and views made from it keep working. */
  close(): void;
  readonly closed: boolean;
  /** A view limited to one tenant: the same methods, only that tenant's endpoints and messages. */
  tenant(tenantId: string): Registry;
  /** The tenant of a view; null for the root registry. */
  readonly tenantId: string | null;
  setTenantMaxEndpoints(n: number): void;

  /** Register an endpoint (enabled, with a fresh secret); its id. All or nothing. */
  addEndpoint(spec: EndpointSpec): string;
  endpoint(id: string): Endpoint;
  endpoints(): Endpoint[];
  removeEndpoint(id: string): void;
  setEnabled(id: string, enabled: boolean): void;
  setUrl(id: string, url: string): void;
  setName(id: string, name: string): void;
  setDescription(id: string, description: string | null): void;
  subscribe(id: string, pattern: string): void;
  unsubscribe(id: string, pattern: string): void;
  setHeader(id: string, name: string, value: string | null): void;
  secret(id: string): string;
  rotateSecret(id: string, newSecret?: string | null, graceSeconds?: number): void;
  signature(id: string, msgId: string, timestamp: number | Date, body: Body): string;
  configureEndpoint(id: string, settings: EndpointSettings): void;

  /** A message and its deliveries with every attempt (wh_message_get_json). */
  message(msgId: string): Record<string, any>;
  failed(id: string, options?: { since?: number | Date; limit?: number }): Record<string, any>[];
  replay(msgId: string, endpointId?: string | null): number;
  recover(id: string, since?: number | Date): number;
  sendTest(id: string): string;
  purge(before: number | Date): number;
  admin(method: string, path: string, body?: Body | object | null, dispatcher?: Dispatcher | null): { status: number; body: any };
}

/** Open a registry: "memory:" (default), "sqlite:PATH" or "postgresql://...". */
export declare function openRegistry(store?: string | null): Registry;

export interface WebhookEvent {
  resourceType: string;
  eventType: string;
  /** An object (serialised with JSON.stringify) or JSON text (sent as written). */
  resource?: object | string | Buffer;
  tenantId?: string | null;
  userId?: string | null;
  resourceId?: string | null;
  time?: Date | null;
}

/** One attempt's outcome. */
export interface Result {
  messageId: string;
  endpointId: string;
  outcome: 'delivered' | 'retrying' | 'failed';
  /** 1 for the first try. */
  attempt: number;
  /** 0 when no response arrived. */
  httpStatus: number;
  /** null on success. */
  error: string | null;
  /** For "retrying": when the next attempt is due. */
  nextAttemptAt: Date | null;
  durationMs: number;
  endpointDisabled: boolean;
}

/** One key per WH_OPT_*, camelCased. */
export interface DispatcherOptions {
  workers?: number;
  maxInFlight?: number;
  maxPerEndpoint?: number;
  timeoutMs?: number;
  connectTimeoutMs?: number;
  retrySchedule?: number[] | string;
  allowPrivateNetworks?: boolean;
  queueLimit?: number;
  userAgent?: string;
  caFile?: string;
  retryJitterPct?: number;
  disableAfterMs?: number;
  breakerWindowMs?: number;
  breakerMinRequests?: number;
  breakerFailurePct?: number;
  breakerCooldownMs?: number;
  throttleMinDelayMs?: number;
  maxBodyBytes?: number;
  retentionDays?: number;
  leaseMs?: number;
  processDefault?: boolean;
  /** Outcomes kept for 'result' events (default 10000; 0: none). */
  resultQueue?: number;
  proxy?: string;
}

export declare class Dispatcher extends EventEmitter {
  constructor(registry: Registry, options?: DispatcherOptions);
  /** Start the worker threads (deliveries pending in a durable store resume). */
  start(): this;
  /** Emit an event; its message id. Never waits for the network. */
  emit(event: WebhookEvent): string;
  /** EventEmitter#emit, for the emitter's own events. */
  emit(eventName: string | symbol, ...args: any[]): boolean;
  /** Several events in one commit, all or nothing; their message ids. */
  emitBatch(events: WebhookEvent[]): string[];
  /** Resolves when nothing is in flight or due and every outcome so far was emitted. */
  drain(timeoutMs?: number): Promise<void>;
  stop(timeoutMs?: number): Promise<void>;
  /** Stop, emit the outcomes still queued, free. Idempotent (the same promise). */
  close(timeoutMs?: number): Promise<void>;
  readonly closed: boolean;
  setDefault(): void;
  readonly resultFd: number;
  stats(): Record<string, number>;
  endpointStats(id: string): Record<string, any>;
  metrics(): string;
  replay(msgId: string, endpointId?: string | null): number;
  recover(endpointId: string, since?: number | Date): number;

  on(event: 'result', listener: (r: Result) => void): this;
  on(event: 'error', listener: (e: unknown) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'result', listener: (r: Result) => void): this;
  once(event: 'error', listener: (e: unknown) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Throws WebhookError (WH_ESIGNATURE, WH_ETIMESTAMP, WH_EINVAL) unless authentic. */
export declare function verify(secret: string, headers: HeaderBag, body: Body, options?: { now?: number | Date }): void;
/** The "v1,..." signature of (msgId, timestamp, body). */
export declare function sign(secret: string, msgId: string, timestamp: number | Date, body: Body): string;
export declare function generateSecret(): string;
/** The envelope an event is delivered as, byte for byte. */
export declare function eventJson(event: WebhookEvent): string;

/** Checks incoming webhooks of several schemes: signatures, timestamps, replays. */
export declare class Receiver {
  constructor(store?: string | null);
  addSecret(scheme: 'standard' | 'github' | 'stripe' | 'slack', secret: string): void;
  /** The request's id when authentic and new; throws WH_EEXIST for one seen before. */
  check(headers: HeaderBag, body: Body): string;
  close(): void;
}

export declare function libraryVersion(): string;
export declare function libraryPath(): string;
export declare function errorFor(code: number, detail?: string): WebhookError;
