// The web console: start runs, watch them live, come back to them. Built on runstream.js.
//
// A run's page keeps its run id in the URL (#/run/<id>) and, in localStorage, the state it
// rendered with the index of the last event in it. Reloaded, reopened or reconnected, it
// draws that state at once and asks the server only for the events after it.
import { Client, State } from "./runstream.js";
import { RunTimeline, answered, formatDuration } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "runstream.token"; // sessionStorage: for this tab's session only
const RUN_PREFIX = "runstream.run."; // localStorage: a run's rendered state
const LAST_RUN = "runstream.lastRun";
const KEEP_RUNS = 20; // rendered states kept; older ones are dropped
const SAVE_EVERY = 500; // ms between saves of a live run's state
const FRAME_BUDGET = 12; // ms of event folding per animation frame
const PAGE_SIZE = 20;

const client = new Client({ token: sessionStorage.getItem(TOKEN_KEY) });
let view = null; // the open RunView, if any
let runsTimer = null;

// -- auth: ask once, keep it for the tab ---------------------------------------------------

let asking = null;
const AUTH_CODES = new Set(["unauthorized", "token_expired"]); // ask for a (new) key or token

function askToken(message) {
  if (asking) return asking;
  const dialog = $("auth-dialog");
  const error = $("auth-error");
  error.hidden = !message;
  error.textContent = message || "";
  asking = new Promise((resolve) => {
    const submit = async (e) => {
      e.preventDefault();
      const token = $("auth-token").value.trim();
      if (!token) return;
      client.token = token;
      try {
        await client.workflows();
      } catch (err) {
        if (AUTH_CODES.has(err.code) || err.code === "forbidden") {
          error.hidden = false;
          error.textContent = "That key or token was refused. Try again.";
          return;
        }
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $("auth-form").removeEventListener("submit", submit);
      dialog.close();
      $("signout").hidden = false;
      asking = null;
      resolve();
    };
    $("auth-form").addEventListener("submit", submit);
    dialog.addEventListener("cancel", (e) => e.preventDefault()); // nothing works without it
    dialog.showModal();
    $("auth-token").focus();
  });
  return asking;
}

/** Run `fn`; if the server wants a key, ask for it once and try again. */
async function call(fn) {
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!AUTH_CODES.has(error.code)) throw error;
      await askToken(error.code === "token_expired" ? "Your token has expired." : client.token ? "The key or token was refused." : null);
    }
  }
}

$("signout").hidden = !client.token;
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  client.token = null;
  location.reload();
});

// -- stored run states ---------------------------------------------------------------------

function loadRun(runId) {
  try {
    const stored = JSON.parse(localStorage.getItem(RUN_PREFIX + runId) || "null");
    return stored ? RunTimeline.restore(stored) : null;
  } catch (_) {
    return null;
  }
}

function saveRun(timeline) {
  const key = RUN_PREFIX + timeline.runId;
  const text = JSON.stringify(timeline.snapshot());
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      localStorage.setItem(key, text);
      localStorage.setItem(LAST_RUN, timeline.runId);
      pruneRuns(timeline.runId);
      return;
    } catch (_) {
      pruneRuns(timeline.runId, 1); // full: drop the oldest and try again
    }
  }
}

function pruneRuns(keep, limit = KEEP_RUNS) {
  const order = JSON.parse(localStorage.getItem("runstream.order") || "[]").filter((id) => id !== keep);
  order.push(keep);
  while (order.length > limit) localStorage.removeItem(RUN_PREFIX + order.shift());
  localStorage.setItem("runstream.order", JSON.stringify(order));
}

function forgetRun(runId) {
  localStorage.removeItem(RUN_PREFIX + runId);
}

// -- small DOM helpers ---------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function show(id) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== id;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = (id === "view-start" && link.dataset.nav === "start") || (id === "view-runs" && link.dataset.nav === "runs");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function asText(value) {
  if (value == null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

/** Statuses of a run that has not ended: it can be cancelled. */
const ACTIVE = new Set(["queued", "running", "paused"]);

const STATUS_WORDS = {
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  error: "Failed",
  failed: "Failed",
  cancelled: "Cancelled",
  interrupted: "Interrupted",
  paused: "Waiting for you",
  skipped: "Skipped",
};

const KIND_WORDS = {
  step: "Step",
  parallel: "Parallel",
  loop: "Loop",
  iteration: "Iteration",
  condition: "Condition",
  router: "Router",
  steps: "Group",
};

// -- the timeline's DOM, updated once per animation frame ----------------------------------

class Renderer {
  constructor(list) {
    this.list = list;
    this.nodes = new Map(); // block key -> {root, status, duration, info, text, textNode, length, ...}
  }

  clear() {
    this.list.replaceChildren();
    this.nodes.clear();
  }

  /** Bring the DOM up to date with the blocks `keys` of `timeline`. */
  update(timeline, keys) {
    for (const key of keys) {
      const block = timeline.blocks[key];
      if (!block) {
        this._remove(key);
        continue;
      }
      this._sync(timeline, block);
    }
  }

  /** Draw every block of `timeline` (a restored state). */
  drawAll(timeline) {
    this.clear();
    const visit = (keys) => {
      for (const key of keys) {
        const block = timeline.blocks[key];
        if (!block) continue;
        this._sync(timeline, block);
        visit(block.children);
      }
    };
    visit(timeline.roots);
  }

  _remove(key) {
    const node = this.nodes.get(key);
    if (node) {
      node.root.remove();
      this.nodes.delete(key);
    }
  }

  _sync(timeline, block) {
    let node = this.nodes.get(block.key);
    if (node && node.generation !== block.generation) {
      // started again (a resumed run re-runs it): draw it afresh, in the same place
      const fresh = this._create(block);
      node.root.replaceWith(fresh.root);
      for (const key of [...this.nodes.keys()]) if (key.startsWith(block.key + ".")) this.nodes.delete(key);
      this.nodes.set(block.key, fresh);
      node = fresh;
    }
    if (!node) {
      node = this._create(block);
      this.nodes.set(block.key, node);
      const parent = block.parent ? this.nodes.get(block.parent) || this._ensure(timeline, block.parent) : null;
      (parent ? parent.children : this.list).append(node.root);
    }
    this._fill(node, block);
  }

  _ensure(timeline, key) {
    const block = timeline.blocks[key];
    if (!block) return null;
    this._sync(timeline, block);
    return this.nodes.get(key);
  }

  _create(block) {
    const head = el("div", { class: "block-head" });
    const kind = el("span", { class: "kind", text: KIND_WORDS[block.kind] || block.kind });
    const name = el("h3", { class: "name" });
    const status = el("span", { class: "status badge" });
    const duration = el("span", { class: "duration" });
    head.append(kind, name, status, duration);
    const info = el("p", { class: "info" });
    const agent = el("p", { class: "agent" });
    const text = el("div", { class: "text" });
    const textNode = document.createTextNode("");
    text.append(textNode);
    const output = el("div", { class: "output" });
    const tools = el("div", { class: "tools" });
    const notes = el("ul", { class: "notes" });
    const error = el("p", { class: "error", role: "alert" });
    const children = el("ol", { class: block.kind === "parallel" ? "children branches" : "children" });
    const root = el("li", { class: `block kind-${block.kind}`, "data-key": block.key });
    root.append(head, info, agent, tools, text, output, notes, error, children);
    return { root, name, status, duration, info, agent, text, textNode, length: 0, output, tools, toolsDrawn: "", notes, error, children, generation: block.generation };
  }

  _fill(node, block) {
    node.root.dataset.status = block.status;
    node.name.textContent = block.name;
    node.status.textContent = STATUS_WORDS[block.status] || block.status;
    node.status.dataset.status = block.status;
    node.duration.textContent = block.status === "running" ? "" : formatDuration(block.startedAt, block.endedAt);
    node.info.textContent = block.info;
    node.info.hidden = !block.info;
    node.agent.textContent = block.agent ? `Agent: ${block.agent}` : "";
    node.agent.hidden = !block.agent;
    if (block.text.length < node.length) {
      node.textNode.data = "";
      node.length = 0;
    }
    if (block.text.length > node.length) {
      node.textNode.appendData(block.text.slice(node.length)); // one text node, appended to
      node.length = block.text.length;
    }
    node.text.hidden = node.length === 0;
    const output = block.text ? "" : asText(block.output);
    if (node.output.textContent !== output) node.output.textContent = output;
    node.output.classList.toggle("json", typeof block.output !== "string");
    node.output.hidden = !output;
    this._tools(node, block.tools);
    node.notes.replaceChildren(...block.notes.map((note) => el("li", { text: note })));
    node.notes.hidden = block.notes.length === 0;
    node.error.textContent = block.error ? `Error: ${block.error}` : "";
    node.error.hidden = !block.error;
  }

  _tools(node, tools) {
    const signature = JSON.stringify(tools.map((t) => [t.id, t.status]));
    if (signature === node.toolsDrawn) return;
    node.toolsDrawn = signature;
    const open = new Set([...node.tools.querySelectorAll("details[open]")].map((d) => d.dataset.tool));
    node.tools.replaceChildren(
      ...tools.map((tool) => {
        const state = tool.status === "running" ? "running…" : tool.status === "failed" ? "failed" : "done";
        const details = el("details", { class: "tool", "data-tool": tool.id, "data-status": tool.status });
        details.open = open.has(tool.id);
        details.append(
          el("summary", { text: `Tool call: ${tool.name} (${state})` }),
          el("p", { class: "label", text: "Arguments" }),
          el("pre", { text: asText(tool.args) }),
        );
        if (tool.status !== "running") {
          details.append(el("p", { class: "label", text: tool.error ? "Error" : "Result" }), el("pre", { text: asText(tool.error || tool.result) }));
        }
        return details;
      }),
    );
    node.tools.hidden = tools.length === 0;
  }
}

// -- one run's page ------------------------------------------------------------------------

class RunView {
  constructor(runId) {
    this.runId = runId;
    this.timeline = loadRun(runId) || new RunTimeline(runId);
    this.renderer = new Renderer($("timeline"));
    this.queue = [];
    this.frame = null;
    this.follower = null;
    this.record = null;
    this.total = null;
    this.lastSave = 0;
    this.lineText = "";
    this.closed = false;
  }

  async open() {
    show("view-run");
    $("run-title").textContent = this.timeline.workflowName || "Run";
    $("run-problem").hidden = true;
    this.renderer.drawAll(this.timeline);
    this._drawRun();
    try {
      this.record = await call(() => client.getRun(this.runId));
    } catch (error) {
      if (error.code === "unknown_run") forgetRun(this.runId);
      return this._problem(error.code === "unknown_run" ? "This run is not on the server (it may have been deleted)." : error.message);
    }
    if (this.closed) return;
    call(() => client.workflow(this.record.workflow_id))
      .then((workflow) => {
        this.total = workflow.steps.length;
        this._drawRun();
      })
      .catch(() => {}); // a workflow no longer served: progress counts what it sees
    this._drawRun();
    this._follow();
  }

  close() {
    this.closed = true;
    if (this.follower) this.follower.close();
    this._cancelFrame();
    this._flush(true);
    this._save();
    setBanner(null);
  }

  replay() {
    if (this.follower) this.follower.close();
    this._cancelFrame();
    this.queue = [];
    forgetRun(this.runId);
    this.timeline = new RunTimeline(this.runId);
    this.renderer.clear();
    this._drawRun();
    this._follow();
  }

  _follow() {
    if (this.timeline.done) {
      this._drawRun();
      return; // everything is drawn already
    }
    const follower = client.follow(this.runId, {
      after: this.timeline.last,
      workflowId: this.record?.workflow_id,
      onEvent: (event) => {
        this.queue.push(event);
        this._schedule();
      },
      onState: (state) => this._onState(state),
      onError: (error) => this._onError(error),
    });
    this.follower = follower;
    this._onState(follower.state);
  }

  _onState(state) {
    if (this.closed) return;
    if (state === State.RECONNECTING) {
      setBanner("Connection lost. Reconnecting… The run goes on on the server; nothing will be missed.");
    } else if (state === State.LIVE || state === State.DONE) {
      setBanner(null);
    }
    this.connection = state;
    this._drawRun();
  }

  async _onError(error) {
    if (AUTH_CODES.has(error.code)) {
      await askToken(error.code === "token_expired" ? "Your token has expired." : client.token ? "The key or token was refused." : null);
      if (!this.closed) this._follow();
      return;
    }
    this._problem(error.message);
  }

  _problem(message) {
    $("run-problem").textContent = message;
    $("run-problem").hidden = false;
    setBanner(null);
  }

  _schedule() {
    if (this.frame !== null) return;
    const step = () => {
      this.frame = null;
      this._flush(false);
    };
    this.frame = document.hidden ? { timeout: setTimeout(step, 100) } : { raf: requestAnimationFrame(step) };
  }

  _cancelFrame() {
    if (!this.frame) return;
    if (this.frame.raf !== undefined) cancelAnimationFrame(this.frame.raf);
    else clearTimeout(this.frame.timeout);
    this.frame = null;
  }

  // Fold queued events in (for at most FRAME_BUDGET ms unless `all`), then update the DOM once.
  _flush(all) {
    const start = performance.now();
    let folded = 0;
    while (folded < this.queue.length && (all || performance.now() - start < FRAME_BUDGET)) {
      this.timeline.apply(this.queue[folded++]);
    }
    this.queue.splice(0, folded);
    const changes = this.timeline.takeChanges();
    this.renderer.update(this.timeline, changes.blocks);
    if (changes.run || folded) this._drawRun();
    const now = performance.now();
    if (this.timeline.done || now - this.lastSave > SAVE_EVERY) this._save();
    if (this.queue.length) this._schedule();
  }

  _save() {
    if (this.timeline.last < 0) return;
    this.lastSave = performance.now();
    saveRun(this.timeline);
    document.body.dataset.renderedIndex = String(this.timeline.last);
  }

  _drawRun() {
    const t = this.timeline;
    const record = this.record;
    const status = t.last >= 0 ? t.status : record?.status || "running";
    $("run-title").textContent = t.workflowName || record?.workflow_name || "Run";
    $("run-meta").textContent = [`Run ${this.runId}`, t.startedAt || record?.created_at ? `started ${when(t.startedAt || record?.created_at)}` : "", t.done ? `took ${formatDuration(t.startedAt, t.endedAt)}` : ""]
      .filter(Boolean)
      .join(" · ");
    const badge = $("run-status");
    badge.textContent = STATUS_WORDS[status] || status;
    badge.dataset.status = status;
    document.body.dataset.runStatus = t.last >= 0 ? t.status : "loading"; // what the timeline shows
    $("run-cancel").hidden = t.done || !ACTIVE.has(status);
    const input = t.input ?? record?.input;
    $("run-input").textContent = input == null ? "" : `Input: ${asText(input)}`;
    $("run-notices").replaceChildren(...t.notices.map((n) => el("li", { class: `notice notice-${n.kind}`, text: n.text })));
    const { finished, total } = t.progress(this.total);
    const bar = $("run-progress");
    bar.hidden = t.done;
    if (total) {
      bar.max = total;
      bar.value = Math.min(total, finished + (t.running().length ? 0.5 : 0)); // half way through the current one
    } else {
      bar.removeAttribute("value"); // indeterminate
    }
    this._line(status, finished, total);
    this._drawPause(t.pause);
    $("run-result").hidden = !(t.done && t.output != null);
    $("run-output").textContent = asText(t.output);
    $("run-output").classList.toggle("json", typeof t.output !== "string");
    const failed = t.status === "error" ? `The run failed: ${t.error}` : t.status === "cancelled" ? "The run was cancelled." : "";
    $("run-error").textContent = failed;
    $("run-error").hidden = !failed;
  }

  // The form a paused run waits for, drawn once per pause (so typing is never lost).
  _drawPause(pause) {
    const box = $("run-pause");
    const key = pause ? JSON.stringify(pause) : "";
    if (box.dataset.pause === key) return;
    box.dataset.pause = key;
    box.hidden = !pause;
    box.replaceChildren(...(pause ? [pauseForm(pause, (answer) => this._answer(answer))] : []));
  }

  async _answer(answer) {
    const problem = $("pause-error");
    try {
      await call(() => client.continueRun(this.runId, { workflowId: this.record?.workflow_id, sessionId: this.record?.session_id, ...answer }));
      problem.hidden = true;
    } catch (error) {
      problem.textContent = error.code === "run_not_paused" ? "The run is not waiting for an answer any more." : error.message;
      problem.hidden = false;
      throw error;
    }
  }

  _line(status, finished, total) {
    let text;
    if (this.timeline.done) {
      const took = formatDuration(this.timeline.startedAt, this.timeline.endedAt);
      text = `${STATUS_WORDS[this.timeline.status]}${took ? ` in ${took}` : ""}.`;
    } else if (this.timeline.status === "paused") {
      text = `Paused: waiting for your answer${this.timeline.pause?.step ? ` at “${this.timeline.pause.step}”` : ""}.`;
    } else if (this.connection === State.RECONNECTING) {
      text = "Reconnecting…";
    } else if (this.connection === State.CONNECTING || this.timeline.last < 0) {
      text = "Connecting…";
    } else {
      const running = this.timeline.running();
      const where = total ? ` (step ${Math.min(finished + 1, total)} of ${total})` : "";
      text = running.length ? `Running: ${running.map((b) => b.name).join(", ")}${where}` : `${STATUS_WORDS[status] || status}…`;
    }
    if (text !== this.lineText) {
      this.lineText = text; // an aria-live region: only real changes are announced
      $("run-line").textContent = text;
    }
  }
}

/** The form for a paused run's active requirement: confirm or reject, fill in, choose, review. */
function pauseForm(pause, send) {
  const requirement = pause.requirements.at(-1) || null;
  const form = el("form", { class: "pause-form", "aria-labelledby": "pause-title" });
  form.append(el("h2", { id: "pause-title", text: `The run is waiting for you${pause.step ? `: ${pause.step}` : ""}` }));
  const say = requirement && (requirement.confirmation_message || requirement.user_input_message || requirement.output_review_message);
  if (say) form.append(el("p", { text: say }));
  const read = []; // functions that add their field to the answer
  if (requirement?.requires_output_review && requirement.step_output != null) {
    const output = requirement.step_output.content ?? requirement.step_output;
    form.append(el("p", { class: "label", text: "The step's output" }), el("pre", { class: "output json", text: asText(output) }));
    const edit = el("textarea", { id: "pause-edit", rows: 3 });
    form.append(el("label", { for: "pause-edit", text: "Edited output (optional)" }), edit);
    read.push((answer) => edit.value && (answer.edited_output = edit.value));
  }
  if (requirement?.requires_user_input && Array.isArray(requirement.user_input_schema)) {
    const values = {};
    for (const field of requirement.user_input_schema) {
      const id = `pause-field-${field.name}`;
      let input;
      if (Array.isArray(field.allowed_values)) {
        input = el("select", { id }, ...field.allowed_values.map((v) => el("option", { value: String(v), text: String(v) })));
      } else if (field.field_type === "bool") {
        input = el("input", { id, type: "checkbox" });
      } else {
        input = el("input", { id, type: field.field_type === "int" || field.field_type === "float" ? "number" : "text" });
      }
      input.required = Boolean(field.required) && field.field_type !== "bool";
      form.append(el("label", { for: id, text: `${field.name}${field.description ? ` (${field.description})` : ""}` }), input);
      read.push(() => {
        const type = field.field_type;
        values[field.name] = type === "bool" ? input.checked : type === "int" || type === "float" ? Number(input.value) : input.value;
      });
    }
    read.push((answer) => (answer.user_input = values));
  }
  if (requirement?.requires_route_selection && Array.isArray(requirement.available_choices)) {
    const group = el("fieldset", {}, el("legend", { text: "Choose" }));
    const type = requirement.allow_multiple_selections ? "checkbox" : "radio";
    const boxes = requirement.available_choices.map((choice, i) => {
      const input = el("input", { type, name: "pause-choice", value: String(choice), id: `pause-choice-${i}`, required: type === "radio" });
      group.append(el("label", { for: input.id, class: "choice" }, input, ` ${choice}`));
      return input;
    });
    form.append(group);
    read.push((answer) => (answer.selected_choices = boxes.filter((b) => b.checked).map((b) => b.value)));
  }
  const errorRequirement = pause.errors.length ? pause.errors.at(-1) : null; // an error pause: retry or skip
  if (errorRequirement) form.append(el("p", { class: "error", text: `The step failed: ${errorRequirement.error_message || "an error"}` }));
  const feedback = el("textarea", { id: "pause-feedback", rows: 2 });
  const confirmable = Boolean(requirement?.requires_confirmation || requirement?.requires_output_review);
  if (confirmable) form.append(el("label", { for: "pause-feedback", text: "Why (if you reject it)" }), feedback);
  const problem = el("p", { id: "pause-error", class: "error", role: "alert" });
  problem.hidden = true;
  const buttons = el("div", { class: "pause-buttons" });
  const submit = async (extra) => {
    const answer = { ...extra };
    for (const fill of read) fill(answer);
    const payload = errorRequirement
      ? { errorRequirements: [...pause.errors.slice(0, -1), { ...errorRequirement, decision: extra.decision }] }
      : { stepRequirements: answered(pause.requirements, answer) };
    for (const button of buttons.querySelectorAll("button")) button.disabled = true;
    try {
      await send(payload);
    } catch (_) {
      for (const button of buttons.querySelectorAll("button")) button.disabled = false;
    }
  };
  const button = (label, extra, validate = true) => {
    const b = el("button", { type: "button", text: label });
    b.addEventListener("click", () => (!validate || form.reportValidity()) && submit(extra));
    return b;
  };
  if (errorRequirement) {
    buttons.append(button("Retry the step", { decision: "retry" }, false), " ", button("Skip it", { decision: "skip" }, false));
  } else if (confirmable) {
    buttons.append(button("Confirm", { confirmed: true }), " ");
    const reject = el("button", { type: "button", text: "Reject" });
    reject.addEventListener("click", () => submit({ confirmed: false, rejection_feedback: feedback.value || undefined }));
    buttons.append(reject);
  } else {
    buttons.append(button("Continue", {}));
  }
  form.append(problem, buttons);
  form.addEventListener("submit", (e) => e.preventDefault());
  return form;
}

function setBanner(text) {
  const banner = $("banner");
  banner.hidden = !text;
  banner.textContent = text || "";
  document.body.dataset.connection = text ? "reconnecting" : "ok";
}

$("run-cancel").addEventListener("click", async () => {
  if (!view) return;
  const button = $("run-cancel");
  button.disabled = true;
  try {
    await call(() => client.cancel(view.runId, view.record?.workflow_id));
  } catch (error) {
    view._problem(error.code === "run_not_active" ? "The run has already ended." : error.message);
  } finally {
    button.disabled = false;
  }
});

$("run-replay").addEventListener("click", () => view && view.replay());

// -- the start page ------------------------------------------------------------------------

let workflows = [];

async function showStart() {
  show("view-start");
  const last = localStorage.getItem(LAST_RUN);
  const resume = $("resume-last");
  resume.hidden = !last;
  if (last) resume.replaceChildren(el("a", { href: `#/run/${last}`, text: "Back to your last run" }));
  try {
    workflows = await call(() => client.workflows());
  } catch (error) {
    $("form-error").textContent = error.message;
    $("form-error").hidden = false;
    return;
  }
  const list = $("workflow-list");
  const chosen = localStorage.getItem("runstream.workflow");
  const selected = workflows.find((w) => w.id === chosen) || workflows[0];
  list.replaceChildren(
    ...workflows.map((w) => {
      const input = el("input", { type: "radio", name: "workflow", value: w.id, id: `wf-${w.id}`, checked: w === selected });
      input.addEventListener("change", () => {
        localStorage.setItem("runstream.workflow", w.id);
        drawForm(w);
      });
      return el(
        "li",
        {},
        el("label", { for: `wf-${w.id}`, class: "workflow" }, input, el("span", { class: "wf-name", text: w.name }),
          el("span", { class: "wf-desc", text: w.description || "" }),
          el("span", { class: "wf-steps", text: w.steps.map((s) => s.name).join(" → ") })),
      );
    }),
  );
  if (selected) drawForm(selected);
}

function drawForm(workflow) {
  $("form-workflow").textContent = workflow.name;
  const fields = $("form-fields");
  const schema = workflow.input_schema;
  const properties = schema && schema.type === "object" ? schema.properties || {} : null;
  $("start-form").dataset.workflow = workflow.id;
  if (!properties) {
    fields.replaceChildren(
      el("label", { for: "field-message", text: "Message" }),
      el("textarea", { id: "field-message", name: "message", rows: 3, required: true, placeholder: "What should the run work on?" }),
    );
    return;
  }
  const required = new Set(schema.required || []);
  fields.replaceChildren(
    ...Object.entries(properties).map(([name, prop]) => {
      const id = `field-${name}`;
      const label = el("label", { for: id, text: `${prop.title || name}${required.has(name) ? "" : " (optional)"}` });
      let input;
      if (Array.isArray(prop.enum)) {
        input = el("select", { id, name }, ...prop.enum.map((v) => el("option", { value: String(v), text: String(v) })));
      } else if (prop.type === "boolean") {
        input = el("input", { id, name, type: "checkbox" });
      } else if (prop.type === "integer" || prop.type === "number") {
        input = el("input", { id, name, type: "number", step: prop.type === "integer" ? "1" : "any" });
        if (prop.minimum != null) input.min = prop.minimum;
        if (prop.maximum != null) input.max = prop.maximum;
      } else if (prop.type === "string") {
        input = el("input", { id, name, type: "text" });
      } else {
        input = el("textarea", { id, name, rows: 2, placeholder: "JSON" });
      }
      input.dataset.type = prop.type || "json";
      if (required.has(name) && prop.type !== "boolean") input.required = true;
      if (prop.default !== undefined && prop.type !== "boolean") input.value = String(prop.default);
      const help = prop.description ? el("small", { text: prop.description }) : null;
      return el("div", { class: "field" }, label, input, help);
    }),
  );
}

function readForm() {
  const inputs = [...$("form-fields").querySelectorAll("input, select, textarea")];
  if (inputs.length === 1 && inputs[0].name === "message") return inputs[0].value;
  const message = {};
  for (const input of inputs) {
    const type = input.dataset.type;
    if (type === "boolean") message[input.name] = input.checked;
    else if (input.value === "") continue;
    else if (type === "integer" || type === "number") message[input.name] = Number(input.value);
    else if (type === "json") message[input.name] = JSON.parse(input.value);
    else message[input.name] = input.value;
  }
  return message;
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  const button = $("start-button");
  button.disabled = true;
  try {
    let message;
    try {
      message = readForm();
    } catch (_) {
      throw new Error("A field that takes JSON does not hold valid JSON.");
    }
    const run = await call(() => client.start($("start-form").dataset.workflow, message));
    location.hash = `#/run/${run.run_id}`;
  } catch (err) {
    error.textContent = err.code === "invalid_input" ? `The input does not fit this workflow: ${err.message}` : err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

// -- the runs list -------------------------------------------------------------------------

function runsQuery() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  return { workflow: params.get("workflow") || "", status: params.get("status") || "", page: Math.max(1, Number(params.get("page")) || 1) };
}

function setRunsQuery(query) {
  const params = new URLSearchParams();
  if (query.workflow) params.set("workflow", query.workflow);
  if (query.status) params.set("status", query.status);
  if (query.page > 1) params.set("page", String(query.page));
  const qs = params.toString();
  location.hash = `#/runs${qs ? "?" + qs : ""}`;
}

async function showRuns() {
  show("view-runs");
  const query = runsQuery();
  $("filter-status").value = query.status;
  if (!workflows.length) {
    try {
      workflows = await call(() => client.workflows());
    } catch (_) {
      workflows = [];
    }
  }
  const select = $("filter-workflow");
  select.replaceChildren(el("option", { value: "", text: "All" }), ...workflows.map((w) => el("option", { value: w.id, text: w.name })));
  select.value = query.workflow;
  await drawRuns(query);
}

async function drawRuns(query) {
  clearInterval(runsTimer);
  let runs;
  try {
    runs = await call(() =>
      client.runs({ workflowId: query.workflow, status: query.status, limit: PAGE_SIZE + 1, offset: (query.page - 1) * PAGE_SIZE }),
    );
  } catch (error) {
    $("runs-error").textContent = error.message;
    $("runs-error").hidden = false;
    return;
  }
  $("runs-error").hidden = true;
  const more = runs.length > PAGE_SIZE;
  runs = runs.slice(0, PAGE_SIZE);
  $("runs-body").replaceChildren(...runs.map(runRow));
  $("runs-empty").hidden = runs.length > 0;
  $("runs-prev").disabled = query.page <= 1;
  $("runs-next").disabled = !more;
  $("runs-page").textContent = `Page ${query.page}`;
  if (runs.some((r) => r.status === "running" || r.status === "queued")) {
    runsTimer = setInterval(() => !document.hidden && drawRuns(runsQuery()), 5000);
  }
}

function runRow(run) {
  const ended = !ACTIVE.has(run.status);
  const duration = ended ? formatDuration(run.created_at, run.updated_at) : "…";
  const open = el("a", { href: `#/run/${run.run_id}`, text: "Open", "aria-label": `Open run ${run.run_id}` });
  const actions = el("td", { class: "actions" }, open);
  if (run.status === "paused") open.textContent = "Answer";
  if (ACTIVE.has(run.status)) {
    const cancel = el("button", { type: "button", text: "Cancel", "aria-label": `Cancel run ${run.run_id}` });
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await call(() => client.cancel(run.run_id, run.workflow_id));
      } catch (_) {
        /* it ended meanwhile */
      }
      drawRuns(runsQuery());
    });
    actions.append(" ", cancel);
  }
  const input = asText(run.input);
  return el(
    "tr",
    { "data-run": run.run_id, "data-status": run.status },
    el("td", {}, el("span", { class: "badge", "data-status": run.status, text: STATUS_WORDS[run.status] || run.status })),
    el("td", { text: run.workflow_name || run.workflow_id }),
    el("td", { class: "input", text: input.length > 80 ? input.slice(0, 79) + "…" : input, title: input }),
    el("td", { text: when(run.created_at) }),
    el("td", { text: duration }),
    actions,
  );
}

$("runs-filter").addEventListener("change", () =>
  setRunsQuery({ workflow: $("filter-workflow").value, status: $("filter-status").value, page: 1 }),
);
$("runs-refresh").addEventListener("click", () => drawRuns(runsQuery()));
$("runs-prev").addEventListener("click", () => setRunsQuery({ ...runsQuery(), page: runsQuery().page - 1 }));
$("runs-next").addEventListener("click", () => setRunsQuery({ ...runsQuery(), page: runsQuery().page + 1 }));

// -- routing -------------------------------------------------------------------------------

function route() {
  const hash = location.hash || "#/";
  clearInterval(runsTimer);
  const match = hash.match(/^#\/run\/([^/?]+)/);
  if (view && (!match || decodeURIComponent(match[1]) !== view.runId)) {
    view.close();
    view = null;
  }
  if (match) {
    if (!view) {
      view = new RunView(decodeURIComponent(match[1]));
      view.open();
    }
  } else if (hash.startsWith("#/runs")) {
    showRuns();
  } else {
    showStart();
  }
  $("main").focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
window.addEventListener("pagehide", () => view && view._save());
route();
