// The console's model of one run: a fold of its events into a tree of blocks, without DOM.
//
// A block is a step or a part of the run (parallel, loop and its iterations, condition,
// router, steps group), keyed by its `step_path` ("1", "0.2", "0.i3.0"), which is stable
// across a server restart. A part that starts again under a path it already has (a run the
// server resumed after a crash re-runs its interrupted step) is reset, so its text shows
// once. The model is plain data: `snapshot()` is JSON, and `RunTimeline.restore` rebuilds
// it, so a reloaded page shows what it had and follows on from `last`.

const KINDS = {
  StepStarted: "step",
  ParallelExecutionStarted: "parallel",
  ConditionExecutionStarted: "condition",
  LoopExecutionStarted: "loop",
  LoopIterationStarted: "iteration",
  RouterExecutionStarted: "router",
  StepsExecutionStarted: "steps",
};

const COMPLETIONS = new Set([
  "StepCompleted",
  "ParallelExecutionCompleted",
  "ConditionExecutionCompleted",
  "LoopIterationCompleted",
  "LoopExecutionCompleted",
  "RouterExecutionCompleted",
  "StepsExecutionCompleted",
]);

const PAUSES = { StepPaused: "step", RouterPaused: "router", StepOutputReview: "step", StepError: "step" };

const RUN_STATUS = { WorkflowCompleted: "completed", WorkflowError: "error", WorkflowCancelled: "cancelled" };
const FINISHED = { completed: true, error: true, cancelled: true };

export const SNAPSHOT_VERSION = 1;

export class RunTimeline {
  constructor(runId = null) {
    this.runId = runId;
    this.version = SNAPSHOT_VERSION;
    this.last = -1; // the last event index folded in
    this.workflowName = null;
    this.input = null;
    this.status = "running";
    this.startedAt = null;
    this.endedAt = null;
    this.output = null;
    this.error = null;
    this.pause = null; // while paused: {step, requirements, errors}, what a person must answer
    this.notices = []; // {index, kind, text}: resumed after a crash, retries
    this.roots = []; // top-level block keys, in order
    this.blocks = {}; // key -> block
    this.ids = {}; // step_id -> key, for events without a step_path
    this.dirty = new Set(); // keys changed since the last `takeChanges`
    this.runChanged = true;
  }

  static restore(snapshot) {
    const timeline = new RunTimeline(snapshot.runId);
    if (snapshot.version !== SNAPSHOT_VERSION) return null;
    Object.assign(timeline, snapshot);
    timeline.dirty = new Set();
    timeline.runChanged = true;
    return timeline;
  }

  /** Plain data, for storage. */
  snapshot() {
    const { dirty, runChanged, ...data } = this;
    return data;
  }

  /** The keys changed since the last call, and whether the run's own fields did. */
  takeChanges() {
    const changes = { blocks: this.dirty, run: this.runChanged };
    this.dirty = new Set();
    this.runChanged = false;
    return changes;
  }

  get done() {
    return this.status in FINISHED;
  }

  /** Fold one event in (events must come in order, each once: the library sees to it). */
  apply(event) {
    this.last = event.event_index;
    const name = event.event;
    if (this.status === "paused" && name !== "WorkflowPaused") {
      this.status = "running"; // answered: the run goes on
      this.pause = null;
      this.runChanged = true;
    }
    if (name === "WorkflowQueued") {
      this.status = "queued"; // waiting for a free slot; WorkflowStarted follows
      this.workflowName = event.workflow_name ?? null;
      this.input = event.input ?? null;
      this.runChanged = true;
    } else if (name === "WorkflowStarted") {
      if (this.status === "queued") this.status = "running";
      this.workflowName = event.workflow_name ?? null;
      this.input = event.input ?? null;
      this.startedAt = event.created_at ?? null;
      this.runChanged = true;
    } else if (name in RUN_STATUS) {
      this._finish(event, RUN_STATUS[name]);
    } else if (name === "WorkflowPaused") {
      this.status = "paused";
      this.pause = {
        step: event.paused_step_name ?? null,
        requirements: event.step_requirements || [],
        errors: event.error_requirements || [],
      };
      this.runChanged = true;
    } else if (name === "WorkflowResumed") {
      this._resumed(event);
    } else if (name in PAUSES) {
      this._pausedAt(event, PAUSES[name]);
    } else if (name === "StepContinued") {
      const block = this._blockOf(event);
      if (block) {
        block.status = "running";
        this.dirty.add(block.key);
      }
    } else if (name in KINDS) {
      this._start(event, KINDS[name]);
    } else if (COMPLETIONS.has(name)) {
      this._complete(event);
    } else {
      const block = this._blockOf(event);
      if (block) this._onStepEvent(block, event);
    }
  }

  _finish(event, status) {
    this.status = status;
    this.endedAt = event.created_at ?? null;
    if (status === "completed") this.output = event.content ?? null;
    if (status === "error") this.error = event.error || "The run failed";
    for (const block of Object.values(this.blocks)) {
      if (block.status === "running" || block.status === "paused") {
        block.status = status === "completed" ? "completed" : status === "cancelled" ? "cancelled" : "failed";
        this.dirty.add(block.key);
      }
    }
    this.runChanged = true;
  }

  _resumed(event) {
    const from = event.resumed_from_step;
    const text = from
      ? `The server restarted; the run resumed from step “${from}”.`
      : "The server restarted; the run resumed after its last step.";
    this.notices.push({ index: event.event_index, kind: "resumed", text });
    // parts that were running when the server stopped will start again, or never finish
    for (const path of event.interrupted_steps || []) {
      const block = this.blocks[path];
      if (block && block.status === "running") {
        block.status = "interrupted";
        this.dirty.add(path);
      }
    }
    this.runChanged = true;
  }

  _keyOf(event) {
    if (event.step_path != null) return String(event.step_path);
    if (event.step_id != null) return this.ids[event.step_id] ?? null;
    return null;
  }

  _blockOf(event) {
    const key = this._keyOf(event);
    return key == null ? null : this.blocks[key] || null;
  }

  // A part waits for a person (before it starts, or to review what it did).
  _pausedAt(event, kind) {
    const key = this._keyOf(event);
    if (key == null) return;
    const block = this.blocks[key] || this._add(key, kind, event);
    block.status = "paused";
    if (event.event === "StepError" && event.error) block.error = String(event.error);
    this.dirty.add(key);
  }

  _add(key, kind, event) {
    const block = newBlock(key, kind);
    this.blocks[key] = block;
    const parent = this.blocks[parentPath(key)];
    if (parent) parent.children.push(key);
    else this.roots.push(key);
    block.parent = parent ? parent.key : null;
    block.name = event.step_name || kind;
    if (event.step_id != null) this.ids[event.step_id] = key;
    return block;
  }

  _start(event, kind) {
    const key = this._keyOf(event) ?? `#${event.event_index}`;
    let block = this.blocks[key];
    if (block) {
      this._reset(block); // started again: a resumed run re-runs an interrupted part
    } else {
      block = this._add(key, kind, event);
    }
    if (event.step_id != null && kind !== "iteration") this.ids[event.step_id] = key;
    block.name = kind === "iteration" ? `Iteration ${event.iteration ?? ""}`.trim() : event.step_name || kind;
    block.startedAt = event.created_at ?? null;
    block.status = "running";
    block.info = startInfo(event, kind);
    this.dirty.add(key);
  }

  _reset(block) {
    for (const child of block.children) this._forget(child);
    Object.assign(block, newBlock(block.key, block.kind), { parent: block.parent, generation: block.generation + 1 });
  }

  _forget(key) {
    const block = this.blocks[key];
    if (!block) return;
    for (const child of block.children) this._forget(child);
    delete this.blocks[key];
  }

  _complete(event) {
    const block = this._blockOf(event);
    if (!block) return;
    block.endedAt = event.created_at ?? null;
    block.status = event.skipped ? "skipped" : event.success === false ? "failed" : "completed";
    if (event.error) block.error = String(event.error);
    if (block.kind === "step" && !block.text && block.output == null && event.content != null) block.output = event.content;
    const extra = completionInfo(event, block.kind);
    if (extra) block.info = [block.info, extra].filter(Boolean).join(" · ");
    this.dirty.add(block.key);
  }

  _onStepEvent(block, event) {
    switch (event.event) {
      case "RunContent":
        if (typeof event.content === "string") block.text += event.content;
        else if (event.content != null) block.text += JSON.stringify(event.content);
        break;
      case "RunStarted":
        block.agent = event.agent_name || event.agent_id || null;
        break;
      case "StepOutput":
        if (!block.text && event.content != null) block.output = event.content;
        break;
      case "ToolCallStarted":
      case "ToolCallCompleted":
        this._tool(block, event);
        break;
      case "StepRetry":
        block.notes.push(`Attempt ${event.attempt ?? "?"} failed${event.error ? `: ${event.error}` : ""}; retrying.`);
        block.text = "";
        break;
      case "RunError":
      case "StepError":
        block.error = String(event.error || event.content || "failed");
        break;
      default:
        return;
    }
    this.dirty.add(block.key);
  }

  _tool(block, event) {
    const tool = event.tool || {};
    const id = tool.tool_call_id || `${block.tools.length}`;
    let entry = block.tools.find((t) => t.id === id);
    if (!entry) {
      entry = { id, name: tool.tool_name || "tool", args: tool.tool_args ?? null, result: null, error: null, status: "running" };
      block.tools.push(entry);
    }
    if (event.event === "ToolCallCompleted") {
      entry.status = tool.tool_call_error ? "failed" : "completed";
      entry.result = tool.result ?? event.content ?? null;
      entry.error = tool.error ?? null;
    }
  }

  /** Top-level progress: finished top-level parts, and how many there are so far. */
  progress(total = null) {
    const finished = this.roots.filter((k) => this.blocks[k] && this.blocks[k].status !== "running").length;
    return { finished, total: Math.max(total ?? 0, this.roots.length) };
  }

  /** The running parts with no running part inside, in order: what the status line names. */
  running() {
    const found = [];
    const visit = (keys) => {
      for (const key of keys) {
        const block = this.blocks[key];
        if (!block || block.status !== "running") continue;
        const before = found.length;
        visit(block.children);
        if (found.length === before) found.push(block);
      }
    };
    visit(this.roots);
    return found;
  }
}

function newBlock(key, kind) {
  return {
    key,
    kind,
    name: kind,
    parent: null,
    status: "running",
    startedAt: null,
    endedAt: null,
    info: "",
    agent: null,
    text: "",
    output: null,
    error: null,
    tools: [],
    notes: [],
    children: [],
    generation: 0,
  };
}

function parentPath(key) {
  const cut = key.lastIndexOf(".");
  return cut < 0 ? null : key.slice(0, cut);
}

function startInfo(event, kind) {
  switch (kind) {
    case "parallel":
      return event.parallel_step_count ? `${event.parallel_step_count} branches side by side` : "branches side by side";
    case "loop":
      return event.max_iterations ? `loop, at most ${event.max_iterations} iterations` : "loop";
    case "iteration":
      return event.max_iterations ? `${event.iteration} of at most ${event.max_iterations}` : "";
    case "condition":
      return event.condition_result === undefined ? "condition" : `condition was ${event.condition_result ? "true" : "false"}`;
    case "router":
      return Array.isArray(event.selected_steps) ? `router chose ${event.selected_steps.join(", ")}` : "router";
    case "steps":
      return event.steps_count ? `group of ${event.steps_count} steps` : "group";
    default:
      return "";
  }
}

function completionInfo(event, kind) {
  if (kind === "loop" && event.iterations != null) return `${event.iterations} iterations`;
  if (event.stop) return "stopped the run early";
  return "";
}

/** "3 s", "1 min 5 s", "<1 s", from two `created_at` values (seconds). */
export function formatDuration(start, end) {
  if (start == null || end == null) return "";
  const seconds = Math.max(0, Math.round(end - start));
  if (seconds < 1) return "<1 s";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The requirements to send back to continue a paused run: `requirements` with its last
 * (active) entry answered. `answer`: `{confirmed, rejection_feedback, user_input,
 * selected_choices, edited_output}`, each only when given. */
export function answered(requirements, answer) {
  if (!requirements.length) return [];
  const active = { ...requirements.at(-1) };
  for (const field of ["confirmed", "rejection_feedback", "user_input", "selected_choices", "edited_output"]) {
    if (answer[field] !== undefined) active[field] = answer[field];
  }
  if (answer.user_input && Array.isArray(active.user_input_schema)) {
    active.user_input_schema = active.user_input_schema.map((f) => ({ ...f, value: answer.user_input[f.name] ?? f.value ?? null }));
  }
  return [...requirements.slice(0, -1), active];
}
