"""The step kinds (Steps, Parallel, Condition, Loop, Router), run by the engine alone.

Each test runs the engine with a ``RunContext`` whose ``emit`` appends to a
list (``tests/enginekit.py``): no server, no storage, a definition in and events out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runstream import (
    Agent,
    Condition,
    DemoModel,
    Loop,
    Parallel,
    Router,
    Step,
    StepInput,
    StepOutput,
    Steps,
    Workflow,
)
from runstream.events import COMPLETION_EVENTS
from tests.enginekit import Event, context, first, names, outline, run

pytestmark = pytest.mark.anyio


def upper(step_input: StepInput) -> str:
    return str(step_input.previous_step_content or step_input.input).upper()


def exclaim(step_input: StepInput) -> str:
    return f"{step_input.previous_step_content}!"


async def test_steps_group_runs_its_steps_in_order_under_its_own_id() -> None:
    events = await run(Workflow(name="G", steps=[Steps("Shout", [upper, exclaim])]))
    assert outline(events) == [
        ("WorkflowStarted", None),
        ("StepsExecutionStarted", "Shout"),
        ("StepStarted", "upper"), ("StepOutput", "upper"), ("StepCompleted", "upper"),
        ("StepStarted", "exclaim"), ("StepOutput", "exclaim"), ("StepCompleted", "exclaim"),
        ("StepsExecutionCompleted", "Shout"),
        ("WorkflowCompleted", None),
    ]  # fmt: skip
    group = first(events, "StepsExecutionStarted")
    child = first(events, "StepStarted", "exclaim")
    assert child["parent_step_id"] == group["step_id"] and child["depth"] == group["depth"] + 1 == 1
    assert (child["step_index"], child["step_path"]) == (1, "0.1")
    done = first(events, "StepsExecutionCompleted")
    assert (done["content"], done["success"], done["stop"], done["step_path"]) == ("GO!", True, False, "0")
    assert events[-1][1]["content"] == "GO!"


async def test_parallel_steps_run_concurrently_and_their_events_interleave() -> None:
    left_ready, right_ready = asyncio.Event(), asyncio.Event()

    async def left(step_input: StepInput) -> str:
        left_ready.set()
        await right_ready.wait()  # only finishes if ``right`` runs at the same time
        return "L"

    async def right(step_input: StepInput) -> str:
        right_ready.set()
        await left_ready.wait()
        return "R"

    def after(step_input: StepInput) -> str:
        return f"{step_input.get_step_content('left')}+{step_input.get_step_content('right')}"

    workflow = Workflow(name="P", steps=[Parallel(left, right, name="Both"), after])
    events = await asyncio.wait_for(run(workflow), 10)
    inner = events[2:-5]
    assert outline(events[:2]) == [("WorkflowStarted", None), ("ParallelExecutionStarted", "Both")]
    assert outline(events[-5:-3]) == [("ParallelExecutionCompleted", "Both"), ("StepStarted", "after")]
    expected = {(n, s) for s in ("left", "right") for n in ("StepStarted", "StepOutput", "StepCompleted")}
    assert set(outline(inner)) == expected and len(inner) == 6
    for child in ("left", "right"):  # each child's own events keep their order
        assert [n for n, s in outline(inner) if s == child] == ["StepStarted", "StepOutput", "StepCompleted"]
    parent = first(events, "ParallelExecutionStarted")
    assert {f["parent_step_id"] for _, f in inner} == {parent["step_id"]}
    assert len({f["step_id"] for _, f in inner}) == 2
    assert first(events, "ParallelExecutionCompleted")["content"] == {"left": "L", "right": "R"}
    assert events[-1][1]["content"] == "L+R"


async def test_a_failing_parallel_step_cancels_its_siblings_and_fails_the_run() -> None:
    sibling_cancelled = asyncio.Event()

    async def waits(step_input: StepInput) -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise
        return "never"

    async def breaks(step_input: StepInput) -> str:
        await asyncio.sleep(0)
        raise RuntimeError("search index is down")

    events = await asyncio.wait_for(run(Workflow(name="P", steps=[Parallel(waits, breaks)])), 10)
    assert events[-1] == ("WorkflowError", {"error": "search index is down", "error_type": "RuntimeError"})
    assert sibling_cancelled.is_set()
    assert "ParallelExecutionCompleted" not in names(events)


def test_parallel_steps_need_distinct_names() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        Parallel(upper, upper)


async def is_long(step_input: StepInput) -> bool:
    return len(str(step_input.input)) > 3


@pytest.mark.parametrize(
    ("evaluator", "message", "result", "ran", "content"),
    [
        (True, "go", True, ["upper"], "GO"),
        (False, "go", False, ["exclaim"], "None!"),
        (lambda si: si.input == "go", "go", True, ["upper"], "GO"),
        (is_long, "go", False, ["exclaim"], "None!"),
        (is_long, "longer", True, ["upper"], "LONGER"),
    ],
)
async def test_condition_runs_the_branch_its_evaluator_picks(
    evaluator: Any, message: str, result: bool, ran: list[str], content: str
) -> None:
    events = await run(Workflow(name="C", steps=[Condition(evaluator, [upper], else_steps=[exclaim])]), message)
    assert [f["step_name"] for n, f in events if n == "StepStarted"] == ran
    assert first(events, "ConditionExecutionStarted")["condition_result"] is result
    done = first(events, "ConditionExecutionCompleted")
    assert (done["condition_result"], done["content"]) == (result, content)
    branch = "t0" if result else "e0"
    assert first(events, "StepStarted")["step_path"] == f"0.{branch}"


async def test_a_false_condition_without_else_passes_the_previous_content_through() -> None:
    events = await run(Workflow(name="C", steps=[upper, Condition(False, [exclaim]), exclaim]))
    assert names(events).count("StepStarted") == 2
    assert first(events, "ConditionExecutionCompleted")["content"] == "GO"
    assert events[-1][1]["content"] == "GO!"


async def test_loop_repeats_until_its_end_condition_holds() -> None:
    seen: list[list[Any]] = []

    def grow(step_input: StepInput) -> str:
        return f"{step_input.previous_step_content or step_input.input}+"

    def long_enough(outputs: list[StepOutput]) -> bool:
        seen.append([o.content for o in outputs])
        return len(outputs[-1].content) >= 5

    events = await run(Workflow(name="L", steps=[Loop([grow, grow], end_condition=long_enough, max_iterations=9)]), "x")
    assert seen == [["x+", "x++"], ["x+++", "x++++"]]
    loop_events = [(n, f.get("iteration")) for n, f in events if n.startswith("Loop")]
    assert loop_events == [
        ("LoopExecutionStarted", None),
        ("LoopIterationStarted", 1), ("LoopIterationCompleted", 1),
        ("LoopIterationStarted", 2), ("LoopIterationCompleted", 2),
        ("LoopExecutionCompleted", None),
    ]  # fmt: skip
    done = first(events, "LoopExecutionCompleted")
    assert (done["total_iterations"], done["max_iterations"], done["content"]) == (2, 9, "x++++")
    paths = [f["step_path"] for n, f in events if n == "StepStarted"]
    assert paths == ["0.i1.0", "0.i1.1", "0.i2.0", "0.i2.1"]
    assert first(events, "LoopIterationCompleted")["step_path"] == "0.i1"


async def test_loop_stops_at_max_iterations_and_takes_an_async_end_condition() -> None:
    async def never(outputs: list[StepOutput]) -> bool:
        return False

    events = await run(Workflow(name="L", steps=[Loop(exclaim, end_condition=never, max_iterations=3)]), "x")
    assert names(events).count("LoopIterationStarted") == 3
    assert first(events, "LoopExecutionCompleted")["total_iterations"] == 3
    assert events[-1][1]["content"] == "None!!!"


async def test_router_runs_what_its_selector_picks_in_that_order() -> None:
    def pick(step_input: StepInput) -> Any:
        return {"one": upper, "name": "exclaim", "both": [exclaim, upper], "none": None}[step_input.input]

    for message, ran in [("one", ["upper"]), ("name", ["exclaim"]), ("both", ["exclaim", "upper"]), ("none", [])]:
        events = await run(Workflow(name="R", steps=[Router(pick, [upper, exclaim])]), message)
        assert [f["step_name"] for n, f in events if n == "StepStarted"] == ran
        assert first(events, "RouterExecutionStarted")["selected_steps"] == ran
        assert first(events, "RouterExecutionCompleted")["selected_steps"] == ran
        assert names(events)[-1] == "WorkflowCompleted"
    both = await run(Workflow(name="R", steps=[Router(pick, [upper, exclaim])]), "both")
    assert [f["step_path"] for n, f in both if n == "StepStarted"] == ["0.c1", "0.c0"]


async def test_a_router_selection_outside_its_choices_fails_the_run() -> None:
    events = await run(Workflow(name="R", steps=[Router(lambda si: exclaim, [upper])]))
    assert events[-1][0] == "WorkflowError"
    assert "not one of its choices" in events[-1][1]["error"]


def nested_workflow() -> Workflow:
    """A parallel inside a loop inside a condition, inside a group, then a router."""

    def tag(label: str) -> Any:
        def step(step_input: StepInput) -> str:
            return f"{label}({step_input.message_text()})"

        step.__name__ = label
        return step

    return Workflow(
        name="Nested",
        steps=[
            Steps(
                "Group",
                [
                    Condition(
                        lambda si: True,
                        [Loop([Parallel(tag("a"), tag("b"), name="Fan"), tag("join")], max_iterations=2)],
                    )
                ],
            ),
            Router(lambda si: "finish", [tag("finish"), tag("other")]),
        ],
    )


async def test_kinds_nest_to_any_depth_with_parent_ids_and_depths() -> None:
    events = await run(nested_workflow())
    assert events[-1][0] == "WorkflowCompleted"
    started = {f["step_path"]: f for n, f in events if n.endswith("Started") and "step_path" in f}
    ids = {path: f["step_id"] for path, f in started.items()}
    assert started["0.0.t0.i2.0.1"]["step_name"] == "b"
    for path, fields in started.items():
        parent = path.rsplit(".", 1)[0] if "." in path else None
        if parent and parent.rsplit(".", 1)[-1].startswith("i"):  # loop iterations belong to the loop
            parent = parent.rsplit(".", 1)[0]
        expected_depth = 0 if parent is None else started[parent]["depth"] + 1
        if not path.rsplit(".", 1)[-1].startswith("i"):
            assert fields["parent_step_id"] == (ids[parent] if parent else None), path
            assert fields["depth"] == expected_depth, path
    assert started["0.0.t0.i2.0.1"]["depth"] == 4
    assert first(events, "ParallelExecutionCompleted")["content"] == {"a": "a(go)", "b": "b(go)"}


async def test_stop_ends_the_run_early_as_completed() -> None:
    def halt(step_input: StepInput) -> StepOutput:
        return StepOutput(content="enough", stop=True)

    events = await run(Workflow(name="S", steps=[upper, halt, exclaim]))
    assert [f["step_name"] for n, f in events if n == "StepStarted"] == ["upper", "halt"]
    name, completed = events[-1]
    assert (name, completed["content"], completed["stopped_early"]) == ("WorkflowCompleted", "enough", True)
    assert completed["metrics"]["steps"] == {} and completed["metrics"]["duration"] >= 0  # no agent step
    assert first(events, "StepCompleted", "halt")["stop"] is True


async def test_stop_deep_inside_nested_kinds_propagates_up() -> None:
    def halt_second_time(step_input: StepInput) -> StepOutput:
        return StepOutput(content="halt", stop=str(step_input.previous_step_content).count("!") >= 1)

    workflow = Workflow(
        name="S",
        steps=[Steps("Outer", [Condition(True, [Loop([exclaim, halt_second_time], max_iterations=5)]), upper]), upper],
    )
    events = await run(workflow, "x")
    assert names(events).count("LoopIterationStarted") == 1
    assert "upper" not in {f["step_name"] for n, f in events if n == "StepStarted"}
    for name in ("LoopExecutionCompleted", "ConditionExecutionCompleted", "StepsExecutionCompleted"):
        assert first(events, name)["stop"] is True, name
    assert events[-1][1]["stopped_early"] is True


async def test_session_state_is_shared_by_the_steps_of_a_run() -> None:
    async def count(step_input: StepInput) -> int:
        step_input.session_state["seen"] = step_input.session_state.get("seen", 0) + 1
        return step_input.session_state["seen"]

    def read(step_input: StepInput) -> Any:
        return dict(step_input.session_state)

    events: list[Event] = []
    ctx = context(events)
    ctx.session_state["seen"] = 10
    await Workflow(name="S", steps=[Parallel(Step("a", count), Step("b", count)), Loop(count, max_iterations=2), read]).run(
        ctx, "go"
    )
    assert events[-1][1]["content"] == {"seen": 14}
    assert ctx.session_state == {"seen": 14}


async def test_functions_and_agents_stand_where_steps_stand() -> None:
    agent = Agent(name="Writer", model=DemoModel(pace=0.001, tokens=5))
    events = await run(Workflow(name="A", steps=[Parallel(agent, upper, name="Mix")]))
    parent = first(events, "ParallelExecutionStarted")["step_id"]
    agent_events = [(n, f) for n, f in events if f.get("agent_name") == "Writer"]
    assert [n for n, _ in agent_events][0] == "RunStarted" and [n for n, _ in agent_events][-1] == "RunCompleted"
    assert {f["parent_step_id"] for _, f in agent_events} == {parent}
    assert set(first(events, "ParallelExecutionCompleted")["content"]) == {"Writer", "upper"}


async def test_a_generator_step_without_a_result_outputs_its_chunks_joined() -> None:
    async def tokens(_: StepInput) -> Any:
        for chunk in ["a ", 1, "é", "", "😀", " end"]:
            yield chunk

    def sync_tokens(_: StepInput) -> Any:
        yield "x"
        yield 2.5

    async def silent(_: StepInput) -> Any:
        return
        yield

    def empty_chunks(_: StepInput) -> Any:
        yield ""

    events = await run(Workflow(name="G", steps=[Parallel(tokens, sync_tokens, silent, empty_chunks, name="All")]))
    streamed = [f["content"] for n, f in events if n == "RunContent" and f["step_name"] == "tokens"]
    assert streamed == ["a ", 1, "é", "", "😀", " end"]
    for name, content in [("tokens", "a 1é😀 end"), ("sync_tokens", "x2.5"), ("silent", None), ("empty_chunks", "")]:
        assert first(events, "StepOutput", name)["content"] == content
        assert first(events, "StepCompleted", name)["content"] == content


def restored(events: list[Event]) -> dict[str, StepOutput]:
    """What crash recovery rebuilds from a log: each completion event's output by path."""
    return {
        f["step_path"]: StepOutput(content=f["content"], step_name=f["step_name"], success=f["success"], stop=f["stop"])
        for n, f in events
        if n in COMPLETION_EVENTS
    }


def comparable(events: list[Event]) -> list[tuple[str, Any, Any, Any]]:
    return [(n, f.get("step_path"), f.get("step_id"), f.get("content")) for n, f in events]


async def test_every_completion_event_carries_what_a_resumed_run_needs() -> None:
    events = await run(nested_workflow())
    completions = [(n, f) for n, f in events if n in COMPLETION_EVENTS]
    assert {n for n, _ in completions} == COMPLETION_EVENTS
    for name, fields in completions:
        assert {"step_path", "content", "success", "stop"} <= set(fields), name


async def test_a_resumed_run_emits_exactly_what_followed_its_last_completed_part() -> None:
    live = await run(nested_workflow())
    cuts = [i for i, (n, _) in enumerate(live) if n in COMPLETION_EVENTS]
    for cut in cuts:
        # Parallel children finish in any order; only cut where the live order is defined.
        if live[cut][0] == "StepCompleted" and live[cut][1]["step_name"] in ("a", "b"):
            continue
        resumed = await run(nested_workflow(), completed=restored(live[: cut + 1]))
        assert comparable(resumed) == comparable(live[cut + 1 :]), f"cut after event {cut} {live[cut][0]}"


async def test_a_parallel_resumed_midway_runs_only_its_unfinished_children() -> None:
    ran: list[str] = []

    def step(label: str) -> Step:
        def work(step_input: StepInput) -> str:
            ran.append(label)
            return label.upper()

        return Step(label, work)

    workflow = Workflow(name="P", steps=[Parallel(step("a"), step("b"), step("c"))])
    done = {"0.1": StepOutput(content="B", step_name="b")}
    events = await run(workflow, completed=done)
    assert sorted(ran) == ["a", "c"]
    assert "ParallelExecutionStarted" not in names(events)  # it had begun before the restart
    assert first(events, "ParallelExecutionCompleted")["content"] == {"a": "A", "b": "B", "c": "C"}
