"""Where a run stops for a person, and how the answers already logged are replayed.

A pause is an exception (``RunPaused``) that unwinds the run after the kind's event
(``StepPaused``, ``RouterPaused``, ``StepOutputReview``, ``StepError``); ``Workflow.run``
then logs ``WorkflowPaused`` with the requirement, and the run holds nothing more.
A continue runs the workflow again, like a resumed run: finished parts are skipped
(their completions are logged), and each gate finds its answer in
``RunContext.resolutions`` (its ``StepContinued`` is logged) instead of pausing.
Only the latest attempt of a step ever runs again: an approved review keeps the
output stored with its requirement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from runstream import events as ev
from runstream.engine.completion import completion_fields
from runstream.engine.context import RunContext, StepScope
from runstream.engine.hitl import (
    HumanReview,
    OnReject,
    PauseKind,
    Resolution,
    StepRequirement,
    requirement_id,
)
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.serialize import to_jsonable

__all__ = [
    "BEFORE_KINDS",
    "Gate",
    "RunPaused",
    "RunRejected",
    "gate_before",
    "input_dict",
    "max_retries_reached",
    "rejected_message",
    "with_feedback",
    "paused_fields",
    "pause",
    "rejection",
    "requirement",
    "skip",
]

BEFORE_KINDS = frozenset({PauseKind.CONFIRMATION, PauseKind.USER_INPUT, PauseKind.ROUTE})


class RunPaused(Exception):
    """Unwinds a run to ``Workflow.run`` once a pause's event is logged."""

    def __init__(self, requirement: StepRequirement) -> None:
        super().__init__(f"paused at {requirement.step_name!r} ({requirement.kind})")
        self.requirement = requirement


class RunRejected(Exception):
    """A rejection (or a timeout) that cancels the run: it ends with ``WorkflowCancelled``."""


def requirement(
    ctx: RunContext,
    scope: StepScope,
    review: HumanReview,
    kind: PauseKind,
    count: int,
    step_type: str,
    path: str | None = None,
    retry_count: int | None = None,
    **fields: Any,
) -> StepRequirement:
    """The requirement of the ``count``-th pause of this kind at this part of the run
    (``retry_count``: how often it was asked before, when that is not ``count``)."""
    path = path or scope.path
    return StepRequirement(
        requirement_id=requirement_id(ctx.run_id, path, kind, count),
        kind=kind,
        step_path=path,
        step_id=scope.step_id,
        step_name=scope.step_name,
        step_index=scope.step_index,
        step_type=step_type,
        on_reject=review.reject_action(OnReject.ELSE if step_type == "Condition" else OnReject.SKIP),
        retry_count=count if retry_count is None else retry_count,
        max_retries=review.max_retries,
        expires_at=time.time() + review.timeout if review.timeout is not None else None,
        on_timeout=review.on_timeout,
        **fields,
    )


async def pause(ctx: RunContext, scope: StepScope, req: StepRequirement, event: str, **fields: Any) -> NoReturn:
    """Log the pause's event and unwind the run (``WorkflowPaused`` follows)."""
    await ctx.emit(
        event,
        {
            **scope.fields(),
            "step_path": req.step_path,
            "requirement_id": req.requirement_id,
            "kind": req.kind,
            **fields,
        },
    )
    raise RunPaused(req)


def rejection(review: HumanReview, answer: Resolution, step_type: str = "Step") -> OnReject:
    """What a rejection does: the declaration's ``on_reject``, unless the server's timer answered."""
    if answer.timed_out and answer.decision is not None:
        return OnReject(answer.decision)
    return review.reject_action(OnReject.ELSE if step_type == "Condition" else OnReject.SKIP)


def max_retries_reached(review: HumanReview, name: str) -> RunRejected:
    return RunRejected(f"Max retries ({review.max_retries}) reached for step '{name}'")


def rejected_message(name: str) -> str:
    return f"Workflow cancelled: Step '{name}' was rejected"


@dataclass
class Gate:
    """What a part of the run does after its before-gate: run (with this input), or not."""

    step_input: StepInput
    rejected: OnReject | None = None


async def gate_before(
    ctx: RunContext, scope: StepScope, review: HumanReview | None, step_type: str, step_input: StepInput
) -> Gate:
    """Confirmation and/or user input before a part runs: pause, or apply the logged answer.
    A ``retry`` rejection asks again (up to ``max_retries``); ``cancel`` raises ``RunRejected``."""
    if review is None or not review.before or step_type == "Router" and review.requires_user_input:
        return Gate(step_input)
    kind = PauseKind.CONFIRMATION if review.requires_confirmation else PauseKind.USER_INPUT
    answers = ctx.answers(scope.path, frozenset({kind}))
    feedback = None
    for count, answer in enumerate(answers):
        if not answer.rejected:
            data = dict(step_input.additional_data)
            if answer.user_input is not None:
                data["user_input"] = answer.user_input
            return Gate(_with_data(step_input, data))
        action = rejection(review, answer, step_type)
        if action is OnReject.CANCEL:
            raise RunRejected(rejected_message(scope.step_name))
        if action is not OnReject.RETRY:
            return Gate(step_input, action)
        if count + 1 > review.max_retries:
            raise max_retries_reached(review, scope.step_name)
        feedback = answer.rejection_feedback
    schema = [f.to_dict() for f in review.schema] if review.requires_user_input else None
    req = requirement(
        ctx, scope, review, kind, len(answers), step_type,
        requires_confirmation=review.requires_confirmation,
        confirmation_message=review.confirmation_message,
        requires_user_input=review.requires_user_input,
        user_input_message=review.user_input_message,
        user_input_schema=schema,
        rejection_feedback=feedback,
        step_input=input_dict(step_input),
    )
    await pause(
        ctx, scope, req, ev.STEP_PAUSED,
        requires_confirmation=review.requires_confirmation,
        confirmation_message=review.confirmation_message,
        requires_user_input=review.requires_user_input,
        user_input_message=review.user_input_message,
        user_input_schema=schema,
    )


async def skip(
    ctx: RunContext, scope: StepScope, completion: str, step_input: StepInput, name: str, reason: str
) -> StepOutput:
    """A part that does not run: its completion is logged (``skipped: true``) so that later
    continues skip it too, and the previous content passes through."""
    output = StepOutput(content=step_input.previous_step_content, step_name=name)
    await ctx.emit(completion, completion_fields(scope, output, skipped=True, skip_reason=reason))
    return output


def _with_data(step_input: StepInput, data: dict[str, Any]) -> StepInput:
    return StepInput(
        input=step_input.input,
        previous_step_content=step_input.previous_step_content,
        previous_step_outputs=step_input.previous_step_outputs,
        additional_data=data,
        session_state=step_input.session_state,
    )


def with_feedback(step_input: StepInput, feedback: str | None, previous_output: Any) -> StepInput:
    """The input of a step run again after a rejection: AgentOS's ``additional_data`` keys."""
    data = dict(step_input.additional_data)
    data["rejection_feedback"] = feedback
    data["previous_output"] = previous_output
    return _with_data(step_input, data)


def input_dict(step_input: StepInput) -> dict[str, Any]:
    """The ``step_input`` of a requirement: what the paused part was about to get."""
    return {
        "input": to_jsonable(step_input.input),
        "previous_step_content": to_jsonable(step_input.previous_step_content),
        "additional_data": to_jsonable(step_input.additional_data) or None,
    }


def paused_fields(req: StepRequirement, answered: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The fields of ``WorkflowPaused``: AgentOS's, with ``step_requirements`` as AgentOS keeps
    it: the run's earlier pauses, ``answered`` (resolved history), then the active one, last."""
    fields: dict[str, Any] = {
        "status": "PAUSED",
        "paused_step_index": req.step_index,
        "paused_step_name": req.step_name,
        "paused_step_path": req.step_path,
        "pause_kind": "error" if req.kind == PauseKind.ERROR else "step",
        "requirement_id": req.requirement_id,
        "step_requirements": [*answered, req.to_dict()],
        "expires_at": req.expires_at,
    }
    if req.kind == PauseKind.ERROR:
        fields["error_requirements"] = [req.error_dict()]
    return fields
