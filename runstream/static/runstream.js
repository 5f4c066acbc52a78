// runstream.js: a browser client for runstream servers. An ES module with no dependencies
// and no build step: `import { Client } from "/static/runstream.js"`.
//
// A follower keeps the index of the last event it delivered. Every (re)connection asks for
// the events after it; whatever arrives at or below it is skipped (a finished run replays
// from 0 over WebSocket), so the caller sees each event once, in order, through the
// terminal event, across dropped connections and server restarts. The protocol logic
// (`FollowCursor`, `parseFrame`, `SSEParser`, `backoffDelay`) is pure and has no I/O.

/** The states a follower goes through; `done` and `failed` are final. */
export const State = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  DONE: "done",
  FAILED: "failed",
});

export const TERMINAL_EVENTS = Object.freeze(["WorkflowCompleted", "WorkflowError", "WorkflowCancelled"]);

/** An error the server reported (HTTP status and stable `code`, or a WebSocket `error`). */
export class RunstreamError extends Error {
  constructor(message, code = "server_error", status = null) {
    super(message);
    this.name = "RunstreamError";
    this.code = code;
    this.status = status;
  }
}

/** The delay before reconnect attempt `attempt` (0, 1, ...): doubling from `initial` up to
 * `max` milliseconds, with "equal jitter" (half fixed, half random) so that many clients
 * dropped at once by a restarting server do not come back at the same instant. */
export function backoffDelay(attempt, initial = 250, max = 10000, random = Math.random) {
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** A server WebSocket frame: `{control}` (a plain JSON object) or `{events}` (SSE-framed text). */
export function parseFrame(text) {
  if (text.startsWith("{")) {
    return { control: JSON.parse(text) };
  }
  const parser = new SSEParser();
  const events = parser.feed(text.endsWith("\n\n") ? text : text + "\n\n");
  if (events.length === 0) {
    throw new RunstreamError(`frame is neither a control message nor an event: ${text.slice(0, 80)}`, "protocol_error");
  }
  return { events };
}

/** SSE text in (in chunks cut anywhere), events out at each blank line; comments
 * (`: ping`) are ignored. Each event is the parsed JSON of its `data` lines. */
export class SSEParser {
  constructor() {
    this.buffer = "";
    this.data = [];
  }

  feed(chunk) {
    this.buffer += chunk;
    const out = [];
    let start = 0;
    for (;;) {
      const end = this.buffer.indexOf("\n", start);
      if (end < 0) break;
      let line = this.buffer.slice(start, end);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      start = end + 1;
      if (line === "") {
        if (this.data.length) out.push(JSON.parse(this.data.join("\n")));
        this.data = [];
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }
}

/** Where a follower of `runId` stands, and what it does next. Pure: frames in, decisions out. */
export class FollowCursor {
  constructor(runId, after = -1, { transport = "auto", initial = 250, max = 10000, random = Math.random } = {}) {
    this.runId = runId;
    this.last = after;
    this.done = false;
    this.attempt = 0;
    this.preference = transport;
    this.wsFailures = 0;
    this.backoff = { initial, max, random };
  }

  /** Deliver `event` (true), skip it as already seen (false), or throw on a gap, after
   * which the caller reconnects: a hole is never papered over. */
  accept(event) {
    const index = event.event_index;
    if (!Number.isInteger(index)) throw new RunstreamError("event has no event_index", "protocol_error");
    if (index <= this.last) return false;
    if (index !== this.last + 1) {
      throw new RunstreamError(`run ${this.runId}: expected event ${this.last + 1}, got ${index}`, "gap");
    }
    this.last = index;
    this.attempt = 0;
    if (TERMINAL_EVENTS.includes(event.event)) this.done = true;
    return true;
  }

  /** The WebSocket `reconnect` action: the events after `last` (null: all of them). */
  reconnectAction() {
    return { action: "reconnect", run_id: this.runId, last_event_index: this.last >= 0 ? this.last : null };
  }

  /** What a control message means: "live" (the stream is flowing), "ignore", "reconnect"
   * (the server is going away), or a thrown `RunstreamError` (it refused us). */
  control(message) {
    switch (message.event) {
      case "catch_up":
      case "subscribed":
      case "replay":
        this.attempt = 0;
        return "live";
      case "server_shutdown":
        return "reconnect";
      case "error":
        throw new RunstreamError(String(message.error), message.code || errorCode(String(message.error)));
      case "auth_error":
        throw new RunstreamError(String(message.error || "Invalid token"), message.code || "unauthorized");
      default:
        return "ignore";
    }
  }

  /** The transport for the next connection: the preference, or with "auto" the WebSocket
   * until it has failed to open twice in a row, then SSE (say, a proxy refuses upgrades). */
  transport() {
    if (this.preference !== "auto") return this.preference;
    return this.wsFailures >= 2 ? "sse" : "ws";
  }

  /** A connection over `transport` opened (true) or failed before it did (false). */
  opened(transport, ok) {
    if (transport !== "ws") {
      if (!ok) this.wsFailures = 0; // SSE fails too: the server is down, try the WebSocket again
      return;
    }
    this.wsFailures = ok ? 0 : this.wsFailures + 1;
  }

  /** The delay before the next attempt; each call counts one more failed attempt. */
  nextDelay() {
    const { initial, max, random } = this.backoff;
    return backoffDelay(this.attempt++, initial, max, random);
  }
}

// Servers that send no `code` with their errors: guess it from the text.
function errorCode(message) {
  if (/not found/i.test(message)) return "unknown_run";
  if (/authenticat/i.test(message)) return "unauthorized";
  return "server_error";
}

const FATAL_STATUS = new Set([400, 401, 403, 404, 422]);

/** Follows one run; see `Client.follow`. */
export class Follower {
  constructor(client, runId, options = {}) {
    this.client = client;
    this.runId = runId;
    this.workflowId = options.workflowId || null;
    this.onEvent = options.onEvent || (() => {});
    this.onState = options.onState || (() => {});
    this.onError = options.onError || (() => {});
    this.pingInterval = options.pingInterval ?? 15000;
    this.idleTimeout = options.idleTimeout ?? 45000;
    this.cursor = new FollowCursor(runId, options.after ?? -1, {
      transport: options.transport || client.transport,
      ...client.backoff,
    });
    this.state = State.CONNECTING;
    this.error = null;
    this.closed = false;
    this._generation = 0; // each connection's callbacks act only while it is the current one
    this._teardown = null;
    this._timer = null;
    this._online = () => this._wakeUp();
    globalThis.addEventListener?.("online", this._online);
    this.finished = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.finished.catch(() => {}); // a caller that only uses callbacks must not see an unhandled rejection
    this._connect();
  }

  /** The index of the last event delivered (-1 before the first). */
  get last() {
    return this.cursor.last;
  }

  /** Stop following (the run goes on on the server); `finished` resolves to null. */
  close() {
    this._end(State.DONE, null);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  _connect() {
    this._timer = null;
    if (this.closed) return;
    const generation = ++this._generation;
    this._teardown = this.cursor.transport() === "sse" ? this._openSSE(generation) : this._openWS(generation);
  }

  _drop() {
    this._generation++;
    clearTimeout(this._timer);
    this._timer = null;
    const teardown = this._teardown;
    this._teardown = null;
    if (teardown) teardown();
  }

  _end(state, result) {
    if (this.closed) return;
    this.closed = true;
    this._drop();
    globalThis.removeEventListener?.("online", this._online);
    this._setState(state);
    if (state === State.FAILED) {
      this.error = result;
      this.onError(result);
      this._reject(result);
    } else {
      this._resolve(result);
    }
  }

  // Connection `generation` ended without a terminal event: wait, then try again.
  _lost(generation) {
    if (generation !== this._generation || this.closed) return;
    this._drop();
    this._setState(State.RECONNECTING);
    this._timer = setTimeout(() => this._connect(), this.cursor.nextDelay());
  }

  _fail(generation, error) {
    if (generation === this._generation) this._end(State.FAILED, error);
  }

  // The browser says the network is back: skip the rest of the wait.
  _wakeUp() {
    if (this._timer !== null && !this.closed) {
      clearTimeout(this._timer);
      this._connect();
    }
  }

  // One event from either transport; true while the connection should go on.
  _deliver(generation, event) {
    if (generation !== this._generation) return false;
    let fresh;
    try {
      fresh = this.cursor.accept(event);
    } catch (_) {
      this._lost(generation); // a gap: read it again from the log
      return false;
    }
    if (!fresh) return true;
    this._setState(State.LIVE);
    this.onEvent(event);
    if (this.cursor.done) {
      this._end(State.DONE, event);
      return false;
    }
    return generation === this._generation; // onEvent may have closed us
  }

  _openWS(generation) {
    const socket = new this.client.WebSocket(this.client.wsUrl);
    let opened = false;
    let awaitingPong = false;
    const ping = setInterval(() => {
      if (awaitingPong) return this._lost(generation); // a whole interval of silence: a dead link
      awaitingPong = true;
      socket.send(JSON.stringify({ action: "ping" }));
    }, this.pingInterval);
    socket.onopen = () => {
      opened = true;
      this.cursor.opened("ws", true);
    };
    socket.onmessage = (message) => {
      if (generation !== this._generation) return;
      awaitingPong = false;
      let frame;
      try {
        frame = parseFrame(String(message.data));
      } catch (_) {
        return this._lost(generation);
      }
      if (frame.control) return this._onControl(generation, frame.control, socket);
      for (const event of frame.events) if (!this._deliver(generation, event)) return;
    };
    socket.onclose = () => {
      if (generation !== this._generation) return;
      if (!opened) this.cursor.opened("ws", false);
      this._lost(generation);
    };
    socket.onerror = () => {}; // onclose follows
    return () => {
      clearInterval(ping);
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close();
      } catch (_) {
        /* not open yet, or already closed */
      }
    };
  }

  _onControl(generation, message, socket) {
    if (message.event === "connected") {
      if (message.requires_auth && !this.client.token) {
        return this._fail(generation, new RunstreamError("The server needs a key or token", "unauthorized", 401));
      }
      if (message.requires_auth) socket.send(JSON.stringify({ action: "authenticate", token: this.client.token }));
      socket.send(JSON.stringify(this.cursor.reconnectAction()));
      return;
    }
    let meaning;
    try {
      meaning = this.cursor.control(message);
    } catch (error) {
      return this._fail(generation, error);
    }
    if (meaning === "live") this._setState(State.LIVE);
    else if (meaning === "reconnect") this._lost(generation);
  }

  _openSSE(generation) {
    const controller = new AbortController();
    let idle = null;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), this.idleTimeout); // not even a `: ping`
    };
    this._streamSSE(generation, controller, touch).then(
      () => this._lost(generation),
      (error) => (error instanceof RunstreamError ? this._fail(generation, error) : this._lost(generation)),
    ).finally(() => clearTimeout(idle));
    return () => {
      clearTimeout(idle);
      controller.abort();
    };
  }

  async _streamSSE(generation, controller, touch) {
    if (!this.workflowId) this.workflowId = (await this.client.getRun(this.runId)).workflow_id;
    const last = this.cursor.last;
    const path = `/workflows/${enc(this.workflowId)}/runs/${enc(this.runId)}/events?last_event_id=${last}`;
    touch();
    let response;
    try {
      response = await this.client._fetch(path, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(last) },
        signal: controller.signal,
      });
    } catch (error) {
      this.cursor.opened("sse", false);
      throw error;
    }
    if (response.status === 204) {
      // a finished run with nothing after our index: its terminal event was delivered
      if (generation === this._generation) this._end(State.DONE, null);
      return;
    }
    if (!response.ok) {
      this.cursor.opened("sse", false);
      const error = await responseError(response);
      if (FATAL_STATUS.has(response.status)) throw error;
      return; // 5xx: the server is unwell, try again
    }
    this.cursor.opened("sse", true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SSEParser();
    for (;;) {
      const { done, value } = await reader.read();
      if (done || generation !== this._generation) return;
      touch();
      for (const event of parser.feed(decoder.decode(value, { stream: true }))) {
        if (!this._deliver(generation, event)) {
          controller.abort();
          return;
        }
      }
    }
  }
}

function enc(part) {
  return encodeURIComponent(part);
}

async function responseError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    /* not JSON */
  }
  const detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`;
  return new RunstreamError(detail, (body && body.code) || `http_${response.status}`, response.status);
}

/** A runstream server: HTTP calls, and `follow` for a run's events. */
export class Client {
  /**
   * `url`: the server (default: the page's origin). `token`: its security key or a JWT,
   * sent as `Authorization: Bearer` and as the WebSocket `authenticate` action.
   * `transport`: "auto" (WebSocket, SSE when it cannot connect), "ws" or "sse".
   * `backoff`: `{initial, max}` milliseconds between reconnect attempts.
   */
  constructor({ url, token = null, transport = "auto", backoff = {}, WebSocket: Socket, fetch: fetcher } = {}) {
    const base = url || globalThis.location?.origin;
    if (!base) throw new RunstreamError("Client needs a url outside a browser page", "invalid_request");
    this.url = base.replace(/\/+$/, "");
    this.token = token;
    this.transport = transport;
    this.backoff = { initial: backoff.initial ?? 250, max: backoff.max ?? 10000 };
    this.WebSocket = Socket || globalThis.WebSocket;
    this.fetchImpl = fetcher || globalThis.fetch.bind(globalThis);
    if (!this.WebSocket && transport === "auto") this.transport = "sse";
  }

  get wsUrl() {
    return this.url.replace(/^http/, "ws") + "/workflows/ws";
  }

  _fetch(path, init = {}) {
    const headers = { ...(init.headers || {}) };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return this.fetchImpl(this.url + path, { ...init, headers });
  }

  async _json(path, init = {}) {
    const response = await this._fetch(path, init);
    if (!response.ok) throw await responseError(response);
    return response.json();
  }

  _post(path, body) {
    return this._json(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /** Every workflow served: `id`, `name`, `description`, `steps`, `input_schema`. */
  workflows() {
    return this._json("/workflows");
  }

  workflow(workflowId) {
    return this._json(`/workflows/${enc(workflowId)}`);
  }

  /** Start a run in the background; resolves to the run (`run_id`, `status`, ...). */
  start(workflowId, message, { sessionId, userId } = {}) {
    const body = { message, background: true };
    if (sessionId) body.session_id = sessionId;
    if (userId) body.user_id = userId;
    return this._post(`/workflows/${enc(workflowId)}/runs`, body);
  }

  /** Runs, newest first: `{workflowId, status, sessionId, userId, limit, offset}`. */
  runs(filters = {}) {
    const names = { workflowId: "workflow_id", status: "status", sessionId: "session_id", userId: "user_id", limit: "limit", offset: "offset" };
    const query = new URLSearchParams();
    for (const [key, name] of Object.entries(names)) {
      if (filters[key] !== undefined && filters[key] !== null && filters[key] !== "") query.set(name, String(filters[key]));
    }
    const qs = query.toString();
    return this._json(`/runs${qs ? "?" + qs : ""}`);
  }

  /** One run: `status`, `output`, `error`, `event_count`, `workflow_id`, ... */
  getRun(runId) {
    return this._json(`/runs/${enc(runId)}`);
  }

  /** Cancel a running run; it ends with `WorkflowCancelled`. */
  async cancel(runId, workflowId = null) {
    const workflow = workflowId || (await this.getRun(runId)).workflow_id;
    return this._post(`/workflows/${enc(workflow)}/runs/${enc(runId)}/cancel`, {});
  }

  /**
   * Answer a paused run (its `WorkflowPaused` event holds `step_requirements`; send them back
   * with the last one answered, or `errorRequirements` with a `decision`). The run goes on in
   * the background; a follower of it sees the events that follow.
   */
  async continueRun(runId, { workflowId = null, stepRequirements, errorRequirements, sessionId } = {}) {
    const workflow = workflowId || (await this.getRun(runId)).workflow_id;
    const body = { background: true };
    if (stepRequirements !== undefined) body.step_requirements = stepRequirements;
    if (errorRequirements !== undefined) body.error_requirements = errorRequirements;
    if (sessionId) body.session_id = sessionId;
    return this._post(`/workflows/${enc(workflow)}/runs/${enc(runId)}/continue`, body);
  }

  /**
   * Follow a run from after index `after` (-1: from the start), live through its terminal
   * event, reconnecting by itself. Options: `onEvent(event)`, `onState(state)`,
   * `onError(error)` (a refusal: unknown run, bad token), `workflowId`, `transport`.
   */
  follow(runId, options = {}) {
    return new Follower(this, runId, options);
  }
}
