"""Pauses on the engine alone: each kind pauses, takes its answer, and runs on from the log."""

from __future__ import annotations

from typing import Any

import pytest

from runstream import Condition, Loop, Router, Step, StepInput, StepOutput, Steps, Workflow
from runstream.errors import InvalidContinue
from runstream.engine.hitl import HumanReview, UserInputField, pause, resolve, timeout_resolution
from runstream.engine.parallel import Parallel
from tests.enginekit import names
from tests.hitlkit import answer, start

pytestmark = pytest.mark.anyio


class Calls:
    """Counts how often each step function ran: steps before a pause must not run again."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.inputs: dict[str, StepInput] = {}

    def step(self, name: str, content: Any = None) -> Any:
        def run(step_input: StepInput) -> StepOutput:
            self.count[name] = self.count.get(name, 0) + 1
            self.inputs[name] = step_input
            return StepOutput(content=content if content is not None else f"{name} of {step_input.previous_step_content}")

        run.__name__ = name
        return run


async def test_confirmation_pauses_before_the_step_and_an_approval_runs_it_once() -> None:
    calls = Calls()
    wf = Workflow(name="W", steps=[
        calls.step("prepare", "ready"),
        Step(name="Deploy", executor=calls.step("deploy"), human_review=HumanReview(requires_confirmation=True, confirmation_message="Deploy?")),
        calls.step("report"),
    ])
    leg = await start(wf)
    assert names(leg.events)[-3:] == ["StepCompleted", "StepPaused", "WorkflowPaused"]
    paused = leg.last[1]
    assert paused["status"] == "PAUSED" and paused["paused_step_name"] == "Deploy" and paused["pause_kind"] == "step"
    req = paused["step_requirements"][-1]
    assert req["requires_confirmation"] is True and req["confirmed"] is None and req["confirmation_message"] == "Deploy?"
    assert req["step_input"]["previous_step_content"] == "ready"
    after = await leg.cont(answer(leg, confirmed=True))
    assert names(after)[:2] == ["StepContinued", "StepStarted"] and names(after)[-1] == "WorkflowCompleted"
    assert calls.count == {"prepare": 1, "deploy": 1, "report": 1}
    assert after[-1][1]["content"] == "report of deploy of ready"


@pytest.mark.parametrize("on_reject,last", [("skip", "WorkflowCompleted"), ("cancel", "WorkflowCancelled")])
async def test_a_rejected_confirmation_skips_or_cancels(on_reject: str, last: str) -> None:
    calls = Calls()
    review = HumanReview(requires_confirmation=True, on_reject=on_reject)
    wf = Workflow(name="W", steps=[calls.step("a", "A"), Step(name="B", executor=calls.step("b"), human_review=review), calls.step("c")])
    leg = await start(wf)
    after = await leg.cont(answer(leg, confirmed=False, rejection_feedback="no"))
    assert names(after)[-1] == last and "b" not in calls.count
    if on_reject == "skip":
        assert calls.count["c"] == 1 and after[-1][1]["content"] == "c of A"  # B's input passed through
    else:
        assert after[-1][1]["reason"] == "Workflow cancelled: Step 'B' was rejected"
        assert after[-1][1]["cancellation_stage"] == "PAUSED" and "c" not in calls.count


async def test_user_input_is_checked_against_the_stored_schema_and_reaches_the_step() -> None:
    calls = Calls()
    schema = [UserInputField("env", allowed_values=["staging", "production"]), {"name": "replicas", "field_type": "int"}]
    wf = Workflow(name="W", steps=[Step(name="Deploy", executor=calls.step("deploy"),
                                        human_review=HumanReview(requires_user_input=True, user_input_schema=schema))])
    leg = await start(wf)
    req = leg.requirement()
    assert [f["name"] for f in req.user_input_schema or []] == ["env", "replicas"]
    with pytest.raises(InvalidContinue, match="Required field 'replicas' is missing"):
        answer(leg, user_input={"env": "staging"})
    with pytest.raises(InvalidContinue, match=r"value 'qa' is not in allowed values"):
        answer(leg, user_input={"env": "qa", "replicas": 2})
    with pytest.raises(InvalidContinue, match="Field 'replicas' expected int, got str"):
        answer(leg, user_input={"env": "staging", "replicas": "2"})
    with pytest.raises(InvalidContinue, match="Field 'x' is not in the schema"):
        answer(leg, user_input={"env": "staging", "replicas": 2, "x": 1})
    # a client's own copy of the schema is ignored: dropping 'required' does not help
    with pytest.raises(InvalidContinue, match="missing"):
        resolve(req, [{"step_id": req.step_id, "user_input": {"env": "staging"},
                       "user_input_schema": [{"name": "replicas", "required": False}]}])
    # the schema's value form is accepted too
    resolution = answer(leg, user_input_schema=[{"name": "env", "value": "production"}, {"name": "replicas", "value": 3}])
    after = await leg.cont(resolution)
    assert names(after)[-1] == "WorkflowCompleted"
    assert calls.inputs["deploy"].additional_data["user_input"] == {"env": "production", "replicas": 3}


async def test_a_router_asks_for_its_route_and_checks_the_name() -> None:
    calls = Calls()
    router = Router(choices=[Step(name="Billing", executor=calls.step("billing")), Step(name="Support", executor=calls.step("support"))],
                    name="triage", human_review=HumanReview(requires_user_input=True))
    leg = await start(Workflow(name="W", steps=[router]))
    assert names(leg.events)[-2:] == ["RouterPaused", "WorkflowPaused"]
    paused = leg.events[-2][1]
    assert paused["available_choices"] == ["Billing", "Support"] and paused["user_input_message"] == "Select a route from: Billing, Support"
    with pytest.raises(InvalidContinue, match="not in available choices"):
        answer(leg, selected_choices=["Sales"])
    with pytest.raises(InvalidContinue, match="takes one route"):
        answer(leg, selected_choices=["Billing", "Support"])
    with pytest.raises(InvalidContinue, match="selected_choices must be"):
        answer(leg)
    after = await leg.cont(answer(leg, selected_choices=["Support"]))
    assert calls.count == {"support": 1}
    started = next(f for n, f in after if n == "RouterExecutionStarted")
    assert started["selected_steps"] == ["Support"] and names(after)[-1] == "WorkflowCompleted"


def review_router(calls: Calls, selector: Any = None, **review: Any) -> Router:
    return Router(selector, choices=[Step(name="Billing", executor=calls.step("billing")),
                                     Step(name="Support", executor=calls.step("support"))],
                  name="triage", human_review=HumanReview(requires_output_review=True, **review))


async def test_a_router_output_review_rejected_with_retry_asks_for_a_route_again_then_keeps_the_edit() -> None:
    """AgentOS's Router review: after the selector's route ran, a person reviews its output; a
    ``retry`` rejection asks for a route (``RouterPaused`` with ``retry_count`` and the feedback),
    the route picked runs anew with the feedback, and an approval's edit is the router's output."""
    calls = Calls()
    wf = Workflow(name="W", steps=[calls.step("intake", "ticket"), review_router(calls, lambda si: "Billing", on_reject="retry"),
                                   calls.step("reply")])
    leg = await start(wf)
    assert names(leg.events)[-3:] == ["StepCompleted", "StepOutputReview", "WorkflowPaused"]
    review = leg.requirement()
    assert (review.kind, review.step_type, review.is_post_execution, review.requires_confirmation) == (
        "output_review", "Router", True, True)
    assert review.step_output == "billing of ticket" and review.available_choices == ["Billing", "Support"]
    assert leg.events[-2][1]["output_review_message"] == "Review output of router 'triage'?"

    after = await leg.cont(answer(leg, confirmed=False, rejection_feedback="not billing"))
    assert names(after) == ["StepContinued", "RouterPaused", "WorkflowPaused"]
    route = leg.requirement()
    assert (route.kind, route.retry_count, route.rejection_feedback) == ("route", 1, "not billing")
    assert after[1][1]["retry_count"] == 1 and after[1][1]["rejection_feedback"] == "not billing"
    answered, active = after[-1][1]["step_requirements"]
    assert answered["confirmed"] is False and active["requirement_id"] == route.requirement_id

    after = await leg.cont(answer(leg, selected_choices=["Support"]))
    assert names(after)[-2:] == ["StepOutputReview", "WorkflowPaused"]
    assert [f["step_path"] for n, f in after if n == "RouterExecutionStarted"] == ["1.r1"]
    assert calls.count == {"intake": 1, "billing": 1, "support": 1}
    data = calls.inputs["support"].additional_data
    assert data["rejection_feedback"] == "not billing" and data["previous_output"] == "billing of ticket"
    second = leg.requirement()
    assert (second.retry_count, second.step_output, second.rejection_feedback) == (1, "support of ticket", "not billing")

    after = await leg.cont(answer(leg, confirmed=True, edited_output="support, edited"))
    completed = next(f for n, f in after if n == "RouterExecutionCompleted")
    assert completed["content"] == "support, edited" and completed["selected_steps"] == ["Support"]
    assert after[-1][1]["content"] == "reply of support, edited"
    assert calls.count == {"intake": 1, "billing": 1, "support": 1, "reply": 1}  # nothing ran twice


@pytest.mark.parametrize(("on_reject", "last", "content"), [
    ("skip", "WorkflowCompleted", "reply of ticket"), ("cancel", "WorkflowCancelled", None)])
async def test_a_router_output_review_rejected_drops_the_output_or_cancels(on_reject: str, last: str, content: Any) -> None:
    calls = Calls()
    wf = Workflow(name="W", steps=[calls.step("intake", "ticket"), review_router(calls, lambda si: "Billing", on_reject=on_reject),
                                   calls.step("reply")])
    leg = await start(wf)
    after = await leg.cont(answer(leg, confirmed=False))
    assert names(after)[-1] == last
    if content is not None:
        skipped = next(f for n, f in after if n == "RouterExecutionCompleted")
        assert skipped["skipped"] is True and after[-1][1]["content"] == content
    else:
        assert after[-1][1]["reason"] == "Workflow cancelled: Step 'triage' was rejected"


async def test_a_router_output_review_cancels_at_max_retries() -> None:
    calls = Calls()
    leg = await start(Workflow(name="W", steps=[review_router(calls, lambda si: "Billing", on_reject="retry", max_retries=1)]))
    await leg.cont(answer(leg, confirmed=False, rejection_feedback="again"))
    await leg.cont(answer(leg, selected_choices=["Billing"]))
    after = await leg.cont(answer(leg, confirmed=False))
    assert names(after)[-1] == "WorkflowCancelled" and after[-1][1]["reason"] == "Max retries (1) reached for step 'triage'"
    assert calls.count == {"billing": 2}


async def test_a_router_takes_several_routes_when_allowed_and_its_review_covers_them() -> None:
    calls = Calls()
    router = Router(choices=[Step(name="Billing", executor=calls.step("billing")), Step(name="Support", executor=calls.step("support"))],
                    name="triage", human_review=HumanReview(requires_user_input=True, allow_multiple_selections=True,
                                                             requires_output_review=True))
    leg = await start(Workflow(name="W", steps=[router]))
    route = leg.requirement()
    assert route.allow_multiple_selections and leg.events[-2][1]["allow_multiple_selections"] is True
    assert route.step_input is not None
    with pytest.raises(InvalidContinue, match="selected twice"):
        answer(leg, selected_choices=["Billing", "Billing"])
    after = await leg.cont(answer(leg, selected_choices=["Support", "Billing"]))
    assert [f["step_name"] for n, f in after if n == "StepCompleted"] == ["Support", "Billing"]  # in the order picked
    assert leg.requirement().step_output == "billing of support of None"
    after = await leg.cont(answer(leg, confirmed=True))
    assert after[-1][1]["content"] == "billing of support of None" and calls.count == {"support": 1, "billing": 1}


def test_a_router_refuses_an_iteration_review() -> None:
    with pytest.raises(ValueError, match="requires_iteration_review is not supported on Router"):
        review_router(Calls(), lambda si: "Billing", requires_iteration_review=True)


async def test_output_review_keeps_the_reviewed_output_without_running_the_step_again() -> None:
    calls = Calls()
    review = HumanReview(requires_output_review=True)
    wf = Workflow(name="W", steps=[Step(name="Draft", executor=calls.step("draft", "v1"), human_review=review), calls.step("send")])
    leg = await start(wf)
    assert names(leg.events)[-3:] == ["StepStarted", "StepOutputReview", "WorkflowPaused"]
    req = leg.requirement()
    assert req.is_post_execution and req.requires_output_review and req.step_output == "v1"
    after = await leg.cont(answer(leg, confirmed=True, edited_output="v1, edited"))
    assert calls.count == {"draft": 1, "send": 1}
    assert after[-1][1]["content"] == "send of v1, edited"


async def test_a_rejected_review_with_retry_runs_the_step_again_with_the_feedback_then_cancels_at_the_limit() -> None:
    calls = Calls()
    review = HumanReview(requires_output_review=True, on_reject="retry", max_retries=1)
    wf = Workflow(name="W", steps=[Step(name="Draft", executor=calls.step("draft", "v"), human_review=review)])
    leg = await start(wf)
    after = await leg.cont(answer(leg, confirmed=False, rejection_feedback="shorter"))
    assert names(after)[-2:] == ["StepOutputReview", "WorkflowPaused"] and calls.count == {"draft": 2}
    data = calls.inputs["draft"].additional_data
    assert data["rejection_feedback"] == "shorter" and data["previous_output"] == "v"
    assert leg.requirement().retry_count == 1
    after = await leg.cont(answer(leg, confirmed=False))
    assert names(after)[-1] == "WorkflowCancelled" and "Max retries (1)" in after[-1][1]["reason"]


async def test_an_error_pause_is_resolved_by_retry_or_skip() -> None:
    attempts = []

    def flaky(step_input: StepInput) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError(f"boom {len(attempts)}")
        return "fetched"

    wf = Workflow(name="W", steps=[Step(name="Fetch", executor=flaky, human_review=HumanReview(on_error="pause")), lambda si: f"got {si.previous_step_content}"])
    leg = await start(wf)
    assert names(leg.events)[-2:] == ["StepError", "WorkflowPaused"]
    paused = leg.last[1]
    assert paused["pause_kind"] == "error" and paused["error_requirements"][0]["error_message"] == "boom 1"
    with pytest.raises(InvalidContinue, match="unresolved error requirements"):
        answer(leg, decision="later")
    req = leg.requirement()
    # as AgentOS's client sends it: its step_requirements unchanged (same ids), the decision beside them
    resolution = resolve(req, [req.to_dict()], [{**paused["error_requirements"][0], "decision": "retry"}])
    after = await leg.cont(resolution)
    assert names(after)[-2:] == ["StepError", "WorkflowPaused"] and leg.last[1]["error_requirements"][0]["retry_count"] == 1
    after = await leg.cont(answer(leg, decision="retry"))
    assert names(after)[-1] == "WorkflowCompleted" and after[-1][1]["content"] == "got fetched" and len(attempts) == 3

    skipped = await start(Workflow(name="W", steps=[Step(name="Fetch", executor=lambda si: 1 / 0, human_review=HumanReview(on_error="pause")), lambda si: f"got {si.previous_step_content}"]), "in")
    after = await skipped.cont(answer(skipped, decision="skip"))
    assert names(after)[-1] == "WorkflowCompleted" and after[-1][1]["content"] == "got None"


async def test_an_error_decision_without_ids_answers_the_active_error_pause() -> None:
    """``error_requirements=[{"decision": "retry"}]`` (curl, by hand) is the active pause's answer,
    as the last entry of ``step_requirements`` is; a wrong decision there says what is wrong."""
    leg = await start(Workflow(name="W", steps=[Step(name="Fetch", executor=lambda si: 1 / 0, human_review=HumanReview(on_error="pause"))]))
    req = leg.requirement()
    assert resolve(req, None, [{"decision": "retry"}]).decision == "retry"
    assert resolve(req, [], [{"decision": "skip"}]).decision == "skip"
    with pytest.raises(InvalidContinue, match='decision must be "retry" or "skip"'):
        resolve(req, None, [{"decision": "again"}])
    with pytest.raises(InvalidContinue, match="no answer for requirement"):  # another step's entry is no answer
        resolve(req, None, [{"step_id": "other", "decision": "retry"}])


async def test_a_loop_iteration_review_ends_the_loop_when_approved() -> None:
    calls = Calls()
    loop = Loop([calls.step("draft")], max_iterations=5, name="Drafts", human_review=HumanReview(requires_iteration_review=True))
    leg = await start(Workflow(name="W", steps=[loop]))
    assert names(leg.events)[-3:] == ["LoopIterationCompleted", "StepOutputReview", "WorkflowPaused"]
    after = await leg.cont(answer(leg, confirmed=False, rejection_feedback="again"))
    assert calls.count == {"draft": 2} and calls.inputs["draft"].additional_data["rejection_feedback"] == "again"
    assert "LoopExecutionStarted" not in names(after)  # announced once, before the pause
    after = await leg.cont(answer(leg, confirmed=True))
    done = next(f for n, f in after if n == "LoopExecutionCompleted")
    assert done["total_iterations"] == 2 and calls.count == {"draft": 2}


async def test_pauses_nested_in_loop_condition_and_steps_continue_in_place() -> None:
    calls = Calls()
    inner = Step(name="Approve", executor=calls.step("approve"), human_review=HumanReview(requires_confirmation=True))
    wf = Workflow(name="W", steps=[
        Loop([Steps("Group", [calls.step("work"), Condition(True, [inner], name="Check")])], max_iterations=2, name="Rounds"),
    ])
    leg = await start(wf)
    first = leg.requirement()
    assert first.step_path == "0.i1.0.1.t0"
    after = await leg.cont(answer(leg, confirmed=True))
    assert leg.requirement().step_path == "0.i2.0.1.t0"
    assert names(after).count("StepsExecutionStarted") == 1  # only iteration 2's group is new
    after = await leg.cont(answer(leg, confirmed=True))
    assert names(after)[-1] == "WorkflowCompleted" and calls.count == {"work": 2, "approve": 2}


async def test_a_rejected_condition_confirmation_takes_the_else_branch() -> None:
    calls = Calls()
    cond = Condition(True, [calls.step("then")], else_steps=[calls.step("other")], name="Gate",
                     human_review=HumanReview(requires_confirmation=True))
    leg = await start(Workflow(name="W", steps=[cond]))
    after = await leg.cont(answer(leg, confirmed=False))
    assert calls.count == {"other": 1} and names(after)[-1] == "WorkflowCompleted"


async def test_pause_decorator_marks_a_function_executor() -> None:
    @pause(requires_confirmation=True, confirmation_message="Really?")
    def risky(step_input: StepInput) -> str:
        return "done"

    leg = await start(Workflow(name="W", steps=[risky]))
    assert leg.requirement().confirmation_message == "Really?"
    after = await leg.cont(answer(leg, confirmed=True))
    assert after[-1][1]["content"] == "done"


async def test_timeouts_answer_as_declared() -> None:
    wf = Workflow(name="W", steps=[Step(name="S", executor=lambda si: "ran", human_review=HumanReview(requires_confirmation=True, timeout=60, on_timeout="approve"))])
    leg = await start(wf)
    req = leg.requirement()
    assert req.expires_at is not None and leg.last[1]["step_requirements"][0]["timeout_at"].endswith("+00:00")
    after = await leg.cont(timeout_resolution(req))
    assert after[-1][1]["content"] == "ran"
    wf = Workflow(name="W", steps=[Step(name="S", executor=lambda si: "ran", human_review=HumanReview(requires_user_input=True, user_input_schema=[{"name": "x"}], timeout=60, on_timeout="approve"))])
    leg = await start(wf)
    after = await leg.cont(timeout_resolution(leg.requirement()))  # no default input: approve falls back to cancel
    assert names(after)[-1] == "WorkflowCancelled"


def test_a_parallel_refuses_steps_that_pause() -> None:
    with pytest.raises(ValueError, match="Parallel cannot hold"):
        Parallel(Step(name="A", executor=lambda si: 1, human_review=HumanReview(requires_confirmation=True)), lambda si: 2)


def deploy_agent(calls: list[str], **flags: bool) -> Any:
    from runstream import Agent, DemoModel, tool

    @tool(**flags)
    def deploy(env: str) -> str:
        """Deploy the release.

        Args:
            env: Where to deploy.
        """
        calls.append(env)
        return f"deployed to {env}"

    return Agent(name="Deployer", model=DemoModel(pace=0, tokens=60), instructions="Use deploy to ship it.", tools=[deploy])


async def test_an_agent_tool_call_waits_for_confirmation_and_the_model_is_not_asked_again() -> None:
    calls: list[str] = []
    agent = deploy_agent(calls, requires_confirmation=True)
    leg = await start(Workflow(name="W", steps=[Step(name="Ship", agent=agent)]), "prod")
    assert names(leg.events)[-2:] == ["StepExecutorPaused", "WorkflowPaused"] and calls == []
    req = leg.requirement()
    assert req.requires_executor_input and req.executor_name == "Deployer" and req.executor_type == "agent"
    pending = (req.executor_requirements or [])[0]
    assert pending["tool_execution"]["tool_name"] == "deploy" and pending["tool_execution"]["requires_confirmation"]
    with pytest.raises(InvalidContinue, match="unresolved executor requirements"):
        answer(leg)
    # AgentOS's list sent back as it came, with "confirmation": null, and a top-level answer
    assert resolve(req, [{**req.to_dict(), "executor_requirements": [{**pending, "confirmation": None}],
                          "confirmed": False}]).tool_decisions[pending["id"]]["confirmed"] is False
    after = await leg.cont(resolve(req, [{"step_id": req.step_id, "executor_requirements": [{**pending, "confirmation": True}]}]))
    assert names(after)[0] == "StepExecutorContinued" and calls == ["prod"]
    assert "StepStarted" not in names(after) and "RunStarted" not in names(after)  # the same agent run goes on
    assert names(after)[-1] == "WorkflowCompleted" and "A tool reports: deployed to prod" in after[-1][1]["content"]


async def test_a_rejected_tool_call_is_reported_to_the_agent_and_an_external_one_takes_the_given_result() -> None:
    calls: list[str] = []
    leg = await start(Workflow(name="W", steps=[Step(name="Ship", agent=deploy_agent(calls, requires_confirmation=True))]), "prod")
    after = await leg.cont(answer(leg, confirmed=False, rejection_feedback="not on a Friday"))
    assert calls == [] and "rejected this tool call: not on a Friday" in after[-1][1]["content"]

    leg = await start(Workflow(name="W", steps=[Step(name="Ship", agent=deploy_agent(calls, external_execution=True))]), "prod")
    req = leg.requirement()
    pending = (req.executor_requirements or [])[0]
    after = await leg.cont(resolve(req, [{"step_id": req.step_id, "executor_requirements": [{**pending, "external_execution_result": "done by ops"}]}]))
    assert calls == [] and "A tool reports: done by ops" in after[-1][1]["content"]
