// The pure part of runstream.js: what a follower delivers, skips, asks for and waits.
import { test } from "node:test";
import assert from "node:assert/strict";

import { FollowCursor, SSEParser, backoffDelay, parseFrame } from "../../runstream/static/runstream.js";

const event = (index, name = "RunContent") => ({ event: name, event_index: index, run_id: "r" });
const frame = (e) => `event: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`;

test("each index is delivered once, in order, through the terminal event", () => {
  const cursor = new FollowCursor("r");
  assert.deepEqual([0, 1, 0, 1, 2].map((i) => cursor.accept(event(i))), [true, true, false, false, true]);
  assert.equal(cursor.last, 2);
  assert.equal(cursor.done, false);
  assert.equal(cursor.accept(event(3, "WorkflowCompleted")), true);
  assert.equal(cursor.done, true);
});

test("a gap is refused, and the cursor stays where it was", () => {
  const cursor = new FollowCursor("r", 4);
  assert.throws(() => cursor.accept(event(6)), { code: "gap" });
  assert.equal(cursor.last, 4);
  assert.equal(cursor.accept(event(5)), true);
});

test("an event without an index is a protocol error", () => {
  assert.throws(() => new FollowCursor("r").accept({ event: "RunContent" }), { code: "protocol_error" });
});

test("reconnect asks for what comes after the last delivered index", () => {
  const cursor = new FollowCursor("r");
  assert.deepEqual(cursor.reconnectAction(), { action: "reconnect", run_id: "r", last_event_index: null });
  cursor.accept(event(0));
  cursor.accept(event(1));
  assert.equal(cursor.reconnectAction().last_event_index, 1);
  assert.equal(new FollowCursor("r", 7).reconnectAction().last_event_index, 7);
});

test("a finished run's replay from 0 is skipped up to the last index", () => {
  const cursor = new FollowCursor("r", 1);
  assert.equal(cursor.control({ event: "replay", total_events: 3 }), "live");
  const delivered = [0, 1, 2].filter((i) => cursor.accept(event(i)));
  assert.deepEqual(delivered, [2]);
});

test("controls: catch-up and subscribe mean live, shutdown means reconnect, errors throw", () => {
  const cursor = new FollowCursor("r");
  assert.equal(cursor.control({ event: "catch_up", missed_events: 3 }), "live");
  assert.equal(cursor.control({ event: "subscribed" }), "live");
  assert.equal(cursor.control({ event: "pong" }), "ignore");
  assert.equal(cursor.control({ event: "authenticated" }), "ignore");
  assert.equal(cursor.control({ event: "server_shutdown", reconnect: true }), "reconnect");
  assert.throws(() => cursor.control({ event: "error", error: "Run r not found" }), { code: "unknown_run" });
  assert.throws(() => cursor.control({ event: "error", error: "bad", code: "invalid_request" }), { code: "invalid_request" });
  assert.throws(() => cursor.control({ event: "auth_error", error: "Invalid token" }), { code: "unauthorized" });
  assert.throws(() => cursor.control({ event: "error", error: "Authentication required" }), { code: "unauthorized" });
});

test("backoff doubles up to its cap, with jitter in the upper half", () => {
  assert.equal(backoffDelay(0, 100, 1000, () => 0), 50);
  assert.equal(backoffDelay(0, 100, 1000, () => 1), 100);
  assert.equal(backoffDelay(3, 100, 1000, () => 1), 800);
  assert.equal(backoffDelay(4, 100, 1000, () => 1), 1000);
  assert.equal(backoffDelay(60, 100, 1000, () => 0.5), 750);
  for (let attempt = 0; attempt < 10; attempt++) {
    const delay = backoffDelay(attempt, 100, 1000);
    const ceiling = Math.min(1000, 100 * 2 ** attempt);
    assert.ok(delay >= ceiling / 2 && delay <= ceiling, `${delay} within [${ceiling / 2}, ${ceiling}]`);
  }
});

test("each failed attempt waits longer; a delivered event starts again from the first delay", () => {
  const cursor = new FollowCursor("r", -1, { initial: 100, max: 10000, random: () => 1 });
  assert.deepEqual([cursor.nextDelay(), cursor.nextDelay(), cursor.nextDelay()], [100, 200, 400]);
  cursor.accept(event(0));
  assert.equal(cursor.nextDelay(), 100);
  cursor.nextDelay();
  cursor.control({ event: "subscribed" });
  assert.equal(cursor.nextDelay(), 100);
});

test("auto transport falls back to SSE after two WebSocket failures, and back after SSE fails", () => {
  const cursor = new FollowCursor("r");
  assert.equal(cursor.transport(), "ws");
  cursor.opened("ws", false);
  assert.equal(cursor.transport(), "ws");
  cursor.opened("ws", false);
  assert.equal(cursor.transport(), "sse");
  cursor.opened("sse", true);
  assert.equal(cursor.transport(), "sse");
  cursor.opened("sse", false);
  assert.equal(cursor.transport(), "ws");
  cursor.opened("ws", false);
  cursor.opened("ws", true);
  assert.equal(cursor.transport(), "ws");
  assert.equal(new FollowCursor("r", -1, { transport: "sse" }).transport(), "sse");
});

test("frames: a control object, or SSE-framed events", () => {
  assert.deepEqual(parseFrame('{"event": "connected", "requires_auth": false}'), {
    control: { event: "connected", requires_auth: false },
  });
  assert.deepEqual(parseFrame(frame(event(3))), { events: [event(3)] });
  assert.deepEqual(parseFrame(frame(event(3)) + frame(event(4))).events.map((e) => e.event_index), [3, 4]);
  assert.throws(() => parseFrame("garbage"), { code: "protocol_error" });
});

test("the SSE parser takes chunks cut anywhere, CRLF, comments and multi-line data", () => {
  const text = `: ping\r\n\r\nid: 0\r\nevent: RunContent\r\ndata: {"event": "RunContent",\r\ndata: "event_index": 0}\r\n\r\n${frame(event(1))}`;
  for (const size of [1, 3, 7, text.length]) {
    const parser = new SSEParser();
    const out = [];
    for (let i = 0; i < text.length; i += size) out.push(...parser.feed(text.slice(i, i + size)));
    assert.deepEqual(out.map((e) => e.event_index), [0, 1], `chunks of ${size}`);
  }
});
