// runstream.js against a real server, started by tests/test_browser_library.py, which passes:
// RUNSTREAM_URL (the server), RUNSTREAM_CUT_URL_WS and _SSE (proxies to it that cut
// connections mid-stream, one for each transport's test),
// RUNSTREAM_KEYED_URL (a server with the security key "secret").
import { test } from "node:test";
import assert from "node:assert/strict";

import { Client, RunstreamError, State } from "../../runstream/static/runstream.js";

const URL = process.env.RUNSTREAM_URL;
const KEYED_URL = process.env.RUNSTREAM_KEYED_URL;
const skip = !URL && "needs a server: run tests/test_browser_library.py";
const FAST = { initial: 5, max: 50 };

/** Follow `runId` to its end; the events delivered and every state gone through. */
async function followAll(client, runId, options = {}) {
  const events = [];
  const states = [];
  const follower = client.follow(runId, {
    ...options,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
  });
  const terminal = await follower.finished;
  return { events, states, terminal, follower };
}

function assertWholeRun(events, runId) {
  assert.deepEqual(events.map((e) => e.event_index), [...Array(events.length).keys()], "every index once, in order");
  assert.equal(events[0].event, "WorkflowStarted");
  assert.equal(events.at(-1).event, "WorkflowCompleted");
  assert.ok(events.every((e) => e.run_id === runId));
}

for (const transport of ["ws", "sse"]) {
  test(`${transport}: a run followed through cut connections arrives whole, each event once`, { skip }, async () => {
    const direct = new Client({ url: URL });
    const run = await direct.start("demo", "a long story");
    const cutUrl = process.env[`RUNSTREAM_CUT_URL_${transport.toUpperCase()}`];
    const cut = new Client({ url: cutUrl, transport, backoff: FAST });
    const { events, states, terminal } = await followAll(cut, run.run_id);
    assertWholeRun(events, run.run_id);
    assert.equal(terminal.event, "WorkflowCompleted");
    assert.ok(states.includes(State.RECONNECTING), `the proxy cut it: ${states}`);
    assert.equal(states.at(-1), State.DONE);
    const text = events.filter((e) => e.event === "RunContent").map((e) => e.content).join("");
    const steps = events.filter((e) => e.event === "RunCompleted").map((e) => e.content).join("");
    assert.equal(text, steps, "the streamed text is the agents' whole answers, once");
  });

  test(`${transport}: following from an index delivers only what comes after it`, { skip }, async () => {
    const client = new Client({ url: URL, transport, backoff: FAST });
    const run = await client.start("demo", "from the middle");
    const whole = await followAll(client, run.run_id);
    const { events } = await followAll(client, run.run_id, { after: 9 });
    assert.deepEqual(events, whole.events.slice(10));
  });

  test(`${transport}: an unknown run fails with unknown_run and no retries`, { skip }, async () => {
    const client = new Client({ url: URL, transport, backoff: FAST });
    for (const workflowId of [undefined, "demo"]) {
      const states = [];
      const follower = client.follow("no-such-run", { workflowId, onState: (s) => states.push(s) });
      await assert.rejects(follower.finished, (e) => e instanceof RunstreamError && e.code === "unknown_run");
      assert.deepEqual(states, [State.FAILED]);
    }
  });
}

test("the terminal event of a finished run ends a follower that already has it", { skip }, async () => {
  const client = new Client({ url: URL, transport: "sse", backoff: FAST });
  const run = await client.start("demo", "short");
  const whole = await followAll(client, run.run_id);
  const { events, states } = await followAll(client, run.run_id, { after: whole.events.at(-1).event_index });
  assert.deepEqual(events, []);
  assert.equal(states.at(-1), State.DONE);
});

test("start, list, get and cancel over HTTP", { skip }, async () => {
  const client = new Client({ url: URL });
  const workflows = await client.workflows();
  assert.ok(workflows.some((w) => w.id === "valve"));
  const run = await client.start("valve", "hold on", { sessionId: "js-session" });
  assert.equal(run.status, "running");
  const seen = [];
  const follower = client.follow(run.run_id, { onEvent: (e) => seen.push(e.event) });
  const runs = await client.runs({ workflowId: "valve", sessionId: "js-session", status: "running" });
  assert.deepEqual(runs.map((r) => r.run_id), [run.run_id]);
  assert.equal((await client.getRun(run.run_id)).workflow_id, "valve");
  assert.deepEqual(await client.cancel(run.run_id), { run_id: run.run_id, cancelled: true, status: "cancelling", already_requested: false });
  const terminal = await follower.finished;
  assert.equal(terminal.event, "WorkflowCancelled");
  assert.equal(seen.at(-1), "WorkflowCancelled");
  await assert.rejects(client.cancel(run.run_id), (e) => e.status === 409 && e.code === "run_not_active");
  await assert.rejects(client.start("nope", "x"), (e) => e.status === 404 && e.code === "unknown_workflow");
  await assert.rejects(client.runs({ limit: 0 }), (e) => e.status === 422 && e.code === "invalid_request");
});

for (const transport of ["ws", "sse"]) {
  test(`${transport}: a server with a key refuses a missing or wrong one, and serves the right one`, { skip }, async () => {
    const anonymous = new Client({ url: KEYED_URL, transport, backoff: FAST });
    await assert.rejects(anonymous.workflows(), (e) => e.status === 401 && e.code === "unauthorized");
    const keyed = new Client({ url: KEYED_URL, token: "secret", transport, backoff: FAST });
    const run = await keyed.start("demo", "with a key");
    const { events } = await followAll(keyed, run.run_id, { workflowId: "demo" });
    assertWholeRun(events, run.run_id);
    for (const client of [anonymous, new Client({ url: KEYED_URL, token: "wrong", transport })]) {
      const f = client.follow(run.run_id, { workflowId: "demo" });
      await assert.rejects(f.finished, (e) => e.code === "unauthorized");
    }
  });
}

test("close stops following; the run goes on and can be followed again", { skip }, async () => {
  const client = new Client({ url: URL, backoff: FAST });
  const run = await client.start("demo", "leave and come back");
  let first = null;
  const follower = client.follow(run.run_id, {
    onEvent: (e) => {
      first ??= e;
      follower.close();
    },
  });
  assert.equal(await follower.finished, null);
  assert.equal(follower.last, 0);
  assert.equal(first.event_index, 0);
  const { events } = await followAll(client, run.run_id, { after: follower.last });
  assert.equal(events[0].event_index, 1);
  assert.equal(events.at(-1).event, "WorkflowCompleted");
});
