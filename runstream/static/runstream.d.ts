// Type declarations for runstream.js (served at /static/runstream.js).

/** A follower's state: `connecting` at first, `live` while events flow, `reconnecting`
 * while it waits to try again, `done` after the terminal event (or `close()`), `failed`
 * when the server refused it (unknown run, bad token). */
export type FollowState = "connecting" | "live" | "reconnecting" | "done" | "failed";

export declare const State: {
  readonly CONNECTING: "connecting";
  readonly LIVE: "live";
  readonly RECONNECTING: "reconnecting";
  readonly DONE: "done";
  readonly FAILED: "failed";
};

export declare const TERMINAL_EVENTS: readonly ["WorkflowCompleted", "WorkflowError", "WorkflowCancelled"];

/** A run event as the server sent it (PROTOCOL.md §1): `event` is its name. */
export interface RunEvent {
  event: string;
  event_index: number;
  run_id: string;
  session_id?: string | null;
  workflow_id?: string;
  workflow_name?: string;
  created_at?: number;
  step_name?: string;
  step_index?: number;
  step_id?: string;
  parent_step_id?: string | null;
  step_path?: string;
  content?: unknown;
  error?: string | null;
  [field: string]: unknown;
}

export interface Workflow {
  id: string;
  name: string;
  description: string | null;
  steps: { name: string; type: string }[];
  /** A JSON Schema of the run's input, or null when any message is accepted. */
  input_schema: Record<string, unknown> | null;
}

export type RunStatus = "queued" | "running" | "paused" | "completed" | "error" | "cancelled" | string;

export interface Run {
  run_id: string;
  workflow_id: string;
  status: RunStatus;
  session_id?: string | null;
  user_id?: string | null;
  input?: unknown;
  output?: unknown;
  content?: unknown;
  error?: string | null;
  event_count?: number;
  created_at?: number;
  updated_at?: number;
  [field: string]: unknown;
}

export interface RunFilters {
  workflowId?: string;
  status?: RunStatus;
  sessionId?: string;
  userId?: string;
  limit?: number;
  offset?: number;
}

export interface Backoff {
  /** Milliseconds before the first retry (250). */
  initial?: number;
  /** The longest wait, in milliseconds (10000). */
  max?: number;
}

export type Transport = "auto" | "ws" | "sse";

export interface ClientOptions {
  /** The server, e.g. "http://127.0.0.1:7777"; the page's origin by default. */
  url?: string;
  /** The server's security key or a JWT. */
  token?: string | null;
  /** "auto" (default): WebSocket, SSE when it cannot connect. */
  transport?: Transport;
  backoff?: Backoff;
  /** Implementations to use instead of the globals (e.g. in tests). */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

export interface FollowOptions {
  /** Deliver the events after this index (-1, the default: all of them). */
  after?: number;
  /** The run's workflow; looked up when absent and needed (SSE). */
  workflowId?: string;
  transport?: Transport;
  onEvent?: (event: RunEvent) => void;
  onState?: (state: FollowState) => void;
  onError?: (error: RunstreamError) => void;
  /** Milliseconds between WebSocket pings; a connection silent for two is dropped (15000). */
  pingInterval?: number;
  /** Milliseconds an SSE stream may stay silent, heartbeats included, before it is dropped (45000). */
  idleTimeout?: number;
}

export declare class RunstreamError extends Error {
  constructor(message: string, code?: string, status?: number | null);
  /** A stable code: `unknown_run`, `unauthorized`, `run_not_active`, `invalid_request`, ... */
  code: string;
  /** The HTTP status, when there was one. */
  status: number | null;
}

export declare class Client {
  constructor(options?: ClientOptions);
  readonly url: string;
  token: string | null;
  readonly wsUrl: string;
  workflows(): Promise<Workflow[]>;
  workflow(workflowId: string): Promise<Workflow>;
  /** Start a run in the background. */
  start(workflowId: string, message: unknown, options?: { sessionId?: string; userId?: string }): Promise<Run>;
  /** Runs, newest first. */
  runs(filters?: RunFilters): Promise<Run[]>;
  getRun(runId: string): Promise<Run>;
  cancel(runId: string, workflowId?: string | null): Promise<{ run_id: string; cancelled: true; status: "cancelling"; already_requested: boolean }>;
  /** Answer a paused run: its requirements with the last (active) one answered. */
  continueRun(
    runId: string,
    options: {
      workflowId?: string | null;
      stepRequirements?: Record<string, unknown>[];
      errorRequirements?: Record<string, unknown>[];
      sessionId?: string;
    },
  ): Promise<{ run_id: string; status: RunStatus; [field: string]: unknown }>;
  /** Follow a run live through its terminal event, reconnecting by itself. */
  follow(runId: string, options?: FollowOptions): Follower;
}

export declare class Follower {
  readonly runId: string;
  readonly state: FollowState;
  /** The index of the last event delivered (-1 before the first). */
  readonly last: number;
  readonly error: RunstreamError | null;
  /** Resolves with the terminal event (null after `close()` or when there was nothing
   * left to deliver); rejects with a `RunstreamError` when the server refuses. */
  readonly finished: Promise<RunEvent | null>;
  /** Stop following; the run goes on on the server. */
  close(): void;
}

/** Pure: where a follower stands and what it does next. */
export declare class FollowCursor {
  constructor(
    runId: string,
    after?: number,
    options?: { transport?: Transport; initial?: number; max?: number; random?: () => number },
  );
  readonly runId: string;
  last: number;
  done: boolean;
  /** True: deliver; false: already delivered; throws (code "gap") on a hole. */
  accept(event: RunEvent): boolean;
  reconnectAction(): { action: "reconnect"; run_id: string; last_event_index: number | null };
  control(message: { event: string; [field: string]: unknown }): "live" | "ignore" | "reconnect";
  transport(): "ws" | "sse";
  opened(transport: "ws" | "sse", ok: boolean): void;
  nextDelay(): number;
}

export declare class SSEParser {
  feed(chunk: string): RunEvent[];
}

export declare function parseFrame(text: string): { control: { event: string; [field: string]: unknown } } | { events: RunEvent[] };

/** Milliseconds before attempt `attempt`: doubling from `initial` to `max`, equal jitter. */
export declare function backoffDelay(attempt: number, initial?: number, max?: number, random?: () => number): number;
