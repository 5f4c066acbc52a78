// The console's run model (timeline.js): a fold of a run's events into blocks, without DOM.
// fixtures/*.json are the events of real runs of the demo server's loop and condition workflows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { RunTimeline, answered, formatDuration } from "../../runstream/static/timeline.js";

const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url)));

let index = 0;
const e = (event, fields = {}) => ({ event, event_index: index++, run_id: "r", created_at: 100 + index, ...fields });
const step = (path, name, id = `id-${path}`) => ({ step_path: path, step_name: name, step_id: id });
const content = (id, text) => e("RunContent", { step_id: id, content: text });

function fold(events, timeline = new RunTimeline("r")) {
  for (const event of events) timeline.apply(event);
  return timeline;
}

test("a loop's iterations hold their own steps, in order", () => {
  const t = fold(fixture("loop-refine"));
  assert.equal(t.status, "completed");
  assert.deepEqual(t.roots, ["0"]);
  const loop = t.blocks["0"];
  assert.equal(loop.kind, "loop");
  assert.deepEqual(loop.children, ["0.i1", "0.i2", "0.i3"]);
  assert.deepEqual(t.blocks["0.i2"].children, ["0.i2.0", "0.i2.1"]);
  assert.equal(t.blocks["0.i2"].name, "Iteration 2");
  assert.match(loop.info, /at most 5 iterations/);
  for (const block of Object.values(t.blocks)) assert.equal(block.status, "completed", block.key);
  assert.match(t.blocks["0.i1.0"].output, /^Draft about/);
});

test("a condition says which way it went", () => {
  const t = fold(fixture("condition-article"));
  assert.match(t.blocks["0"].info, /condition was false/);
  assert.deepEqual(t.blocks["0"].children, ["0.e0"]);
  assert.deepEqual(t.roots, ["0", "1"]);
  assert.equal(t.output, "Published: A friendly overview of AI agents in technical python");
});

test("streamed text, tool calls folded by id, parallel branches under their group", () => {
  index = 0;
  const t = fold([
    e("WorkflowStarted", { workflow_name: "W", input: "tides" }),
    e("ParallelExecutionStarted", { ...step("0", "Drafts"), parallel_step_count: 2 }),
    e("StepStarted", step("0.0", "A")),
    e("StepStarted", step("0.1", "B")),
    e("RunStarted", { step_id: "id-0.0", agent_name: "Writer" }),
    e("ToolCallStarted", { step_id: "id-0.0", tool: { tool_call_id: "c1", tool_name: "search", tool_args: { q: "x" } } }),
    content("id-0.1", "b1 "),
    e("ToolCallCompleted", { step_id: "id-0.0", tool: { tool_call_id: "c1", tool_name: "search", result: ["r"] } }),
    content("id-0.0", "a1 "),
    content("id-0.1", "b2"),
    content("id-0.0", "a2"),
  ]);
  assert.deepEqual(t.blocks["0"].children, ["0.0", "0.1"]);
  assert.equal(t.blocks["0"].info, "2 branches side by side");
  assert.equal(t.blocks["0.0"].text, "a1 a2");
  assert.equal(t.blocks["0.1"].text, "b1 b2");
  assert.equal(t.blocks["0.0"].agent, "Writer");
  assert.deepEqual(t.blocks["0.0"].tools, [{ id: "c1", name: "search", args: { q: "x" }, result: ["r"], error: null, status: "completed" }]);
  assert.deepEqual(t.running().map((b) => b.key), ["0.0", "0.1"]);
  assert.deepEqual(t.progress(3), { finished: 0, total: 3 });
  const changes = t.takeChanges();
  assert.ok(changes.run && changes.blocks.has("0.1"));
  assert.equal(t.takeChanges().blocks.size, 0);
});

test("a run the server resumed after a crash shows its interrupted step's text once", () => {
  index = 0;
  const before = [
    e("WorkflowStarted", { workflow_name: "W" }),
    e("StepStarted", step("0", "Research")),
    content("id-0", "facts "),
    content("id-0", "about "),
    e("StepCompleted", { ...step("0", "Research"), content: "facts about ", success: true }),
    e("StepStarted", step("1", "Write")),
    content("id-1", "Once "),
    content("id-1", "upon "), // the server dies here
  ];
  const after = [
    e("WorkflowResumed", { resumed_from_step: "Write", interrupted_steps: ["1"] }),
    e("StepStarted", step("1", "Write")),
    content("id-1", "Once "),
    content("id-1", "upon "),
    content("id-1", "a time."),
    e("StepCompleted", { ...step("1", "Write"), content: "Once upon a time.", success: true }),
    e("WorkflowCompleted", { content: "Once upon a time." }),
  ];
  const interrupted = fold([...before, after[0]]);
  assert.equal(interrupted.blocks["1"].status, "interrupted");
  assert.equal(interrupted.blocks["1"].text, "Once upon ");
  assert.equal(interrupted.notices[0].text, "The server restarted; the run resumed from step “Write”.");
  const whole = fold(after.slice(1), interrupted);
  assert.equal(whole.blocks["1"].text, "Once upon a time.");
  assert.equal(whole.blocks["1"].generation, 1);
  assert.equal(whole.blocks["0"].text, "facts about ");
  assert.deepEqual(whole.roots, ["0", "1"]);
  assert.equal(whole.status, "completed");
});

test("a snapshot restores the same model, which goes on from its last index", () => {
  const events = fixture("loop-refine");
  const whole = fold(events);
  const half = fold(events.slice(0, 12));
  const restored = RunTimeline.restore(JSON.parse(JSON.stringify(half.snapshot())));
  assert.equal(restored.last, 11);
  fold(events.slice(12), restored);
  assert.deepEqual(restored.snapshot(), whole.snapshot());
  assert.equal(RunTimeline.restore({ ...half.snapshot(), version: 0 }), null);
});

test("errors and cancellation in plain words; running parts end with the run", () => {
  index = 0;
  const failed = fold([
    e("WorkflowStarted"),
    e("StepStarted", step("0", "Fetch")),
    e("StepCompleted", { ...step("0", "Fetch"), success: false, error: "connection refused" }),
    e("WorkflowError", { error: "Step Fetch failed: connection refused" }),
  ]);
  assert.equal(failed.status, "error");
  assert.equal(failed.error, "Step Fetch failed: connection refused");
  assert.equal(failed.blocks["0"].status, "failed");
  assert.equal(failed.blocks["0"].error, "connection refused");
  const cancelled = fold([e("WorkflowStarted"), e("StepStarted", step("0", "Slow")), e("WorkflowCancelled")]);
  assert.equal(cancelled.status, "cancelled");
  assert.equal(cancelled.blocks["0"].status, "cancelled");
});

test("durations read as people say them", () => {
  assert.equal(formatDuration(10, 10.2), "<1 s");
  assert.equal(formatDuration(10, 19), "9 s");
  assert.equal(formatDuration(0, 65), "1 min 5 s");
  assert.equal(formatDuration(0, 3 * 3600 + 120), "3 h 2 min");
  assert.equal(formatDuration(null, 5), "");
});

test("a paused run waits for its answer, then goes on", () => {
  index = 0;
  const requirement = { step_id: "s1", step_name: "Inspect", requires_confirmation: true, confirmed: null };
  const t = fold([
    e("WorkflowStarted"),
    e("WorkflowPaused", { paused_step_name: "Inspect", step_requirements: [{ step_id: "old", confirmed: true }, requirement] }),
  ]);
  assert.equal(t.status, "paused");
  assert.equal(t.done, false);
  assert.equal(t.pause.step, "Inspect");
  assert.deepEqual(t.pause.requirements.at(-1), requirement);
  fold([e("StepContinued", step("0", "Inspect"))], t);
  assert.equal(t.status, "running");
  assert.equal(t.pause, null);
  fold([e("StepStarted", step("0", "Inspect")), e("StepCompleted", { ...step("0", "Inspect"), content: "ok", success: true })], t);
  assert.equal(t.blocks["0"].status, "completed");
});

test("the step a run waits at is drawn as paused before it starts; a rejected one as skipped", () => {
  index = 0;
  const t = fold([
    e("WorkflowStarted"),
    e("StepPaused", { ...step("0", "Deploy"), requires_confirmation: true }),
    e("WorkflowPaused", { paused_step_name: "Deploy", step_requirements: [{ step_id: "id-0" }] }),
  ]);
  assert.deepEqual(t.roots, ["0"]);
  assert.equal(t.blocks["0"].status, "paused");
  assert.equal(t.blocks["0"].name, "Deploy");
  fold([e("StepContinued", step("0", "Deploy")), e("StepCompleted", { ...step("0", "Deploy"), skipped: true, success: true })], t);
  assert.equal(t.blocks["0"].status, "skipped");
  const cancelled = fold([e("WorkflowStarted"), e("StepPaused", step("0", "Deploy")), e("WorkflowPaused"), e("WorkflowCancelled")]);
  assert.equal(cancelled.blocks["0"].status, "cancelled");
});

test("an answer fills in the active requirement only", () => {
  const schema = [{ name: "env", field_type: "str", value: null, required: true, allowed_values: ["staging", "production"] }];
  const requirements = [{ step_id: "a", confirmed: true }, { step_id: "b", requires_user_input: true, user_input_schema: schema }];
  const out = answered(requirements, { confirmed: true, user_input: { env: "staging" } });
  assert.deepEqual(out[0], requirements[0]);
  assert.deepEqual(out[1].user_input, { env: "staging" });
  assert.equal(out[1].user_input_schema[0].value, "staging");
  assert.equal(out[1].confirmed, true);
  assert.equal(requirements[1].user_input, undefined, "the stored list is not changed");
  assert.deepEqual(answered(requirements, { confirmed: false, rejection_feedback: "not now" })[1].rejection_feedback, "not now");
  assert.deepEqual(answered([], { confirmed: true }), []);
});

test("a queued run is queued until its WorkflowStarted, then runs", () => {
  index = 0;
  const t = fold([e("WorkflowQueued", { workflow_name: "W", input: "tides" })]);
  assert.equal(t.status, "queued");
  assert.equal(t.input, "tides");
  assert.equal(t.done, false);
  fold([e("WorkflowStarted", { workflow_name: "W", input: "tides" })], t);
  assert.equal(t.status, "running");
  fold([e("WorkflowCancelled", { reason: "cancelled by request" })], t);
  assert.equal(t.status, "cancelled");
});
