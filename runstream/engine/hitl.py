"""Human in the loop, as declared and as it travels: ``HumanReview``, ``UserInputField``,
``@pause``, the ``StepRequirement`` a pause stores, and the ``Resolution`` a continue brings.

The names and wire fields are AgentOS 3.1.10's, so its clients work unchanged. The
difference: the server is the authority. A pause's requirement is logged with it, and a
continue is checked against that stored copy (``resolve``); only the answer fields
(``confirmed``, ``rejection_feedback``, ``user_input``, ``selected_choices``,
``edited_output``, an error ``decision``) are taken from the client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, TypeVar

from runstream.errors import InvalidContinue

__all__ = [
    "HumanReview",
    "OnError",
    "OnReject",
    "OnTimeout",
    "PauseKind",
    "Resolution",
    "StepRequirement",
    "UserInputField",
    "iso_time",
    "pause",
    "requirement_id",
    "resolve",
    "review_of",
    "timeout_resolution",
]


class OnReject(StrEnum):
    """What a rejection does: skip the step, cancel the run, take a Condition's else
    branch, or run the step again with the reviewer's feedback."""

    SKIP = "skip"
    CANCEL = "cancel"
    ELSE = "else"
    RETRY = "retry"


class OnTimeout(StrEnum):
    """What the server does when a pause's ``timeout`` expires with no answer."""

    CANCEL = "cancel"
    SKIP = "skip"
    APPROVE = "approve"


class OnError(StrEnum):
    """What a step's exception does: end the run, skip the step, or pause for a person."""

    FAIL = "fail"
    SKIP = "skip"
    PAUSE = "pause"


class PauseKind(StrEnum):
    """The ``kind`` of a requirement: what the person is asked (runstream's field; AgentOS
    tells them apart by flags and calls all but executor pauses ``pause_kind: "step"``)."""

    CONFIRMATION = "confirmation"
    USER_INPUT = "user_input"
    ROUTE = "route"
    OUTPUT_REVIEW = "output_review"
    ITERATION_REVIEW = "iteration_review"
    ERROR = "error"
    EXECUTOR = "executor"
    """An agent's tool calls: confirm them, or give an externally executed call's result."""


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


@dataclass
class UserInputField:
    """One value a person is asked for: ``UserInputField("env", allowed_values=["staging", "prod"])``."""

    name: str
    field_type: str = "str"
    description: str | None = None
    value: Any = None
    required: bool = True
    allowed_values: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.field_type not in _FIELD_TYPES:
            raise ValueError(f"UserInputField {self.name!r}: field_type must be one of {', '.join(_FIELD_TYPES)}")

    @classmethod
    def of(cls, value: "UserInputField | dict[str, Any]") -> "UserInputField":
        if isinstance(value, UserInputField):
            return value
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        if "field_type" in known and isinstance(known["field_type"], type):
            known["field_type"] = known["field_type"].__name__
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.allowed_values is None:
            del data["allowed_values"]
        return data

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not an acceptable answer, or None."""
        if value is None or value == "":
            return f"Required field '{self.name}' is missing or empty" if self.required else None
        expected = _FIELD_TYPES[self.field_type]
        if not isinstance(value, expected) or (self.field_type in ("int", "float") and isinstance(value, bool)):
            return f"Field '{self.name}' expected {self.field_type}, got {type(value).__name__}"
        if self.allowed_values is not None and value not in self.allowed_values:
            return f"Field '{self.name}' value {value!r} is not in allowed values: {self.allowed_values!r}"
        return None


@dataclass
class HumanReview:
    """Where a person takes part in a step: ``Step(..., human_review=HumanReview(requires_confirmation=True))``.

    Before the step: ``requires_confirmation`` and/or ``requires_user_input`` (against
    ``user_input_schema``; on a ``Router``, the person picks the route). After it:
    ``requires_output_review`` (a bool, or a function of the ``StepOutput``) and, on a
    ``Loop``, ``requires_iteration_review``. ``on_error="pause"`` asks what to do about
    an exception (retry or skip). ``timeout`` seconds after a pause the server applies
    ``on_timeout`` by itself, whether or not anyone is connected.
    """

    requires_confirmation: bool = False
    confirmation_message: str | None = None
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: Sequence[UserInputField | dict[str, Any]] | None = None
    allow_multiple_selections: bool = False
    requires_output_review: bool | Callable[[Any], bool] = False
    output_review_message: str | None = None
    requires_iteration_review: bool = False
    iteration_review_message: str | None = None
    on_reject: OnReject | str | None = None
    on_error: OnError | str | None = None
    max_retries: int = 3
    timeout: float | None = None
    on_timeout: OnTimeout | str = OnTimeout.CANCEL
    schema: list[UserInputField] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.schema = [UserInputField.of(f) for f in self.user_input_schema or []]
        if self.on_reject is not None:
            self.on_reject = OnReject(self.on_reject)
        if self.on_error is not None:
            self.on_error = OnError(self.on_error)
        self.on_timeout = OnTimeout(self.on_timeout)
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("a HumanReview's timeout must be a positive number of seconds")
        if self.max_retries < 0:
            raise ValueError("a HumanReview's max_retries must be 0 or more")

    @property
    def before(self) -> bool:
        """Whether the step waits for a person before it runs."""
        return self.requires_confirmation or self.requires_user_input

    def reject_action(self, default: OnReject = OnReject.SKIP) -> OnReject:
        return OnReject(self.on_reject) if self.on_reject is not None else default

    def wants_output_review(self, output: Any) -> bool:
        check = self.requires_output_review
        return bool(check(output)) if callable(check) else bool(check)


F = TypeVar("F", bound=Callable[..., Any])


def pause(
    requires_confirmation: bool = False,
    confirmation_message: str | None = None,
    requires_user_input: bool = False,
    user_input_message: str | None = None,
    user_input_schema: Sequence[UserInputField | dict[str, Any]] | None = None,
    on_reject: OnReject | str | None = None,
    timeout: float | None = None,
    on_timeout: OnTimeout | str = OnTimeout.CANCEL,
) -> Callable[[F], F]:
    """``@pause(requires_confirmation=True)`` on a step function: the same as giving its
    ``Step`` a ``HumanReview`` with these fields."""
    review = HumanReview(
        requires_confirmation=requires_confirmation,
        confirmation_message=confirmation_message,
        requires_user_input=requires_user_input,
        user_input_message=user_input_message,
        user_input_schema=user_input_schema,
        on_reject=on_reject,
        timeout=timeout,
        on_timeout=on_timeout,
    )

    def mark(fn: F) -> F:
        fn.__runstream_review__ = review  # type: ignore[attr-defined]
        return fn

    return mark


def review_of(executor: Any) -> HumanReview | None:
    """The ``HumanReview`` an executor was marked with by ``@pause``, if any."""
    review = getattr(executor, "__runstream_review__", None)
    return review if isinstance(review, HumanReview) else None


def requirement_id(run_id: str, path: str, kind: str, retry_count: int) -> str:
    """A pause's stable id: the same after a restart, new for each retry."""
    return hashlib.blake2s(f"{run_id}/{path}/{kind}/{retry_count}".encode(), digest_size=8).hexdigest()


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


_OUTPUT_MARK = "is_step_output"
"""Marks the ``StepOutput`` dict ``StepRequirement.to_dict`` wraps a reviewed output in."""
_KEPT_NULLS = frozenset({"confirmed", "user_input", "selected_choices", "rejection_feedback", "timeout_at"})


@dataclass
class StepRequirement:
    """What a pause asks, as AgentOS's ``StepRequirement`` plus runstream's ``requirement_id``,
    ``kind``, ``step_path`` and ``expires_at`` (Unix time)."""

    requirement_id: str
    kind: str
    step_path: str
    step_id: str
    step_name: str
    step_index: int
    step_type: str = "Step"
    requires_confirmation: bool = False
    confirmation_message: str | None = None
    confirmed: bool | None = None
    on_reject: str = OnReject.CANCEL
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: list[dict[str, Any]] | None = None
    user_input: dict[str, Any] | None = None
    requires_route_selection: bool = False
    available_choices: list[str] | None = None
    allow_multiple_selections: bool = False
    selected_choices: list[str] | None = None
    requires_output_review: bool = False
    output_review_message: str | None = None
    is_post_execution: bool = False
    step_input: dict[str, Any] | None = None
    step_output: Any = None
    edited_output: Any = None
    rejection_feedback: str | None = None
    retry_count: int = 0
    max_retries: int = 3
    expires_at: float | None = None
    on_timeout: str = OnTimeout.CANCEL
    error_message: str | None = None
    error_type: str | None = None
    decision: str | None = None
    requires_executor_input: bool = False
    executor_id: str | None = None
    executor_name: str | None = None
    executor_run_id: str | None = None
    executor_type: str | None = None
    executor_requirements: list[dict[str, Any]] | None = None
    executor_state: dict[str, Any] | None = None
    """What the paused agent had done (its messages so far and the calls it waits on): the
    continue carries on from here instead of asking the model again."""

    def to_dict(self) -> dict[str, Any]:
        """The wire form: AgentOS drops ``null`` values but keeps ``false``, ``0`` and ``[]``;
        ``step_output`` is a ``StepOutput`` dict, as AgentOS's client parses it."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["timeout_at"] = iso_time(self.expires_at) if self.expires_at is not None else None
        for flag in ("confirmed", "user_input", "selected_choices", "rejection_feedback"):
            data.setdefault(flag, None)
        if self.step_output is not None:
            data["step_output"] = {
                "content": self.step_output, "step_name": self.step_name, "step_id": self.step_id,
                "step_type": self.step_type, _OUTPUT_MARK: True,
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StepRequirement":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        output = known.get("step_output")
        if isinstance(output, dict) and output.get(_OUTPUT_MARK):
            known["step_output"] = output.get("content")
        return cls(**known)

    def answered(self, resolution: "Resolution") -> dict[str, Any]:
        """This requirement as resolved history, with its answer filled in (AgentOS keeps
        every pause's entry in ``step_requirements``; the last one is the active one)."""
        data = self.to_dict()
        data.pop("executor_state", None)  # what the paused agent had done: the active pause's only
        data["confirmed"] = resolution.confirmed
        data["rejection_feedback"] = resolution.rejection_feedback
        if resolution.user_input is not None:
            data["user_input"] = resolution.user_input
            data["user_input_schema"] = [
                {**f, "value": resolution.user_input.get(f["name"], f.get("value"))} for f in self.user_input_schema or []
            ] or None
        if resolution.selected_choices is not None:
            data["selected_choices"] = resolution.selected_choices
        if resolution.edited_output is not None:
            data["edited_output"] = resolution.edited_output
        if self.kind == PauseKind.ERROR:
            data["decision"] = resolution.decision
        elif resolution.timed_out and resolution.decision is not None:
            data["on_reject"] = resolution.decision  # AgentOS: a timeout rejects as on_timeout says
        if resolution.timed_out:
            data["timed_out"] = True
        for entry in data.get("executor_requirements") or []:
            decision = (resolution.tool_decisions or {}).get(entry.get("tool_execution", {}).get("tool_call_id"), {})
            if "confirmed" in decision:
                entry["confirmation"], entry["confirmation_note"] = decision["confirmed"], decision.get("note")
            if "result" in decision:
                entry["external_execution_result"] = decision["result"]
        return {k: v for k, v in data.items() if v is not None or k in _KEPT_NULLS}

    def error_dict(self) -> dict[str, Any]:
        """AgentOS's ``ErrorRequirement``, for an error pause."""
        return {
            "step_id": self.step_id,
            "step_name": self.step_name,
            "step_index": self.step_index,
            "error_message": self.error_message,
            "error_type": self.error_type,
            "retry_count": self.retry_count,
            "decision": self.decision,
        }


@dataclass
class Resolution:
    """A person's answer to one requirement, as logged in ``StepContinued`` (or by the
    server's timer, ``timed_out``). ``reviewed_output`` is the stored output an approved
    review keeps, so the step is not run again."""

    requirement_id: str
    step_path: str = ""
    kind: str = ""
    confirmed: bool | None = None
    rejection_feedback: str | None = None
    user_input: dict[str, Any] | None = None
    selected_choices: list[str] | None = None
    edited_output: Any = None
    decision: str | None = None
    reviewed_output: Any = None
    tool_decisions: dict[str, dict[str, Any]] | None = None
    """Executor pauses: per ``tool_call_id``, ``{"confirmed", "note", "result"}``."""
    executor_state: dict[str, Any] | None = None
    timed_out: bool = False

    @property
    def rejected(self) -> bool:
        return self.confirmed is False

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if not self.timed_out:
            del data["timed_out"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Resolution":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _answer_for(
    requirement: StepRequirement, step_requirements: Any, error_requirements: Any
) -> dict[str, Any]:
    """The client's entry for the active requirement: matched by ``requirement_id``, else by
    ``step_id`` (what AgentOS clients send), else a list's last entry (AgentOS: the last is active)."""
    if error_requirements is not None and not isinstance(error_requirements, list):
        raise InvalidContinue("Invalid error_requirements: expected a JSON array")
    if step_requirements is not None and not isinstance(step_requirements, list):
        raise InvalidContinue("Invalid step_requirements: expected a JSON array")
    errors, steps = list(error_requirements or []), list(step_requirements or [])
    if not all(isinstance(e, dict) for e in errors + steps):
        raise InvalidContinue("Invalid step_requirements: each entry must be a JSON object")
    # an error pause is answered in error_requirements: an AgentOS client sends its unchanged
    # step_requirements beside the decision, with the same ids
    groups = [errors, steps] if requirement.kind == PauseKind.ERROR else [errors + steps]
    for entries in groups:
        for entry in reversed(entries):
            if entry.get("requirement_id") == requirement.requirement_id:
                return dict(entry)
        for entry in reversed(entries):
            if entry.get("step_id") == requirement.step_id and _same_pause(requirement, entry):
                return dict(entry)
    for entries in groups:  # no ids: the last entry answers (an error decision first, for an error pause)
        if entries and "requirement_id" not in entries[-1] and "step_id" not in entries[-1]:
            return dict(entries[-1])
    raise InvalidContinue(
        f"Cannot continue run - unresolved step requirements: [{requirement.step_name!r}] "
        f"(no answer for requirement {requirement.requirement_id}, step_id {requirement.step_id})"
    )


_PAUSE_MARKS = ("retry_count", "is_post_execution", "requires_route_selection", "requires_executor_input")


def _same_pause(requirement: StepRequirement, entry: dict[str, Any]) -> bool:
    """Whether an entry matched by ``step_id`` (AgentOS's client drops ``requirement_id``) is
    this pause's, not an earlier one's at the same step (a review before its retry, a step's
    confirmation before its output review): the resolved history a client echoes back, or a
    stale answer sent again, never answers the active pause."""
    return all(
        key not in entry or entry[key] is None or entry[key] == getattr(requirement, key) for key in _PAUSE_MARKS
    )


def _user_input(requirement: StepRequirement, entry: dict[str, Any]) -> dict[str, Any]:
    """The values given, from ``user_input`` or the schema's ``value`` fields (both forms are
    accepted), checked against the stored schema."""
    schema = [UserInputField.of(f) for f in requirement.user_input_schema or []]
    given = entry.get("user_input")
    if given is not None and not isinstance(given, dict):
        raise InvalidContinue(f"Invalid user_input for step '{requirement.step_name}': expected an object")
    values: dict[str, Any] = dict(given or {})
    if not values:
        for item in entry.get("user_input_schema") or []:
            if isinstance(item, dict) and item.get("name") and item.get("value") is not None:
                values[item["name"]] = item["value"]
    known = {f.name for f in schema}
    problems = [f"Field '{name}' is not in the schema" for name in values if schema and name not in known]
    problems += [p for f in schema if (p := f.problem(values.get(f.name, f.value))) is not None]
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise InvalidContinue(
            f"Invalid user_input for step '{requirement.step_name}': User input validation failed:\n{lines}"
        )
    return {**{f.name: f.value for f in schema if f.value is not None}, **values}


def _confirmed(requirement: StepRequirement, entry: dict[str, Any]) -> bool:
    confirmed = entry.get("confirmed")
    if not isinstance(confirmed, bool):
        raise InvalidContinue(
            f"Cannot continue run - unresolved step requirements: [{requirement.step_name!r}] "
            "(confirmed must be true or false)"
        )
    return confirmed


def resolve(requirement: StepRequirement, step_requirements: Any = None, error_requirements: Any = None) -> Resolution:
    """Check a continue against the stored ``requirement``; the answer it carries, or
    ``InvalidContinue`` saying what is wrong. Fields a client may not change
    (``on_reject``, ``max_retries``, the schema, ...) are ignored."""
    entry = _answer_for(requirement, step_requirements, error_requirements)
    resolution = Resolution(requirement.requirement_id, requirement.step_path, requirement.kind)
    feedback = entry.get("rejection_feedback")
    if feedback is not None and not isinstance(feedback, str):
        raise InvalidContinue("rejection_feedback must be a string")
    kind = requirement.kind
    if kind == PauseKind.EXECUTOR:
        resolution.tool_decisions = _tool_decisions(requirement, entry)
        resolution.executor_state = requirement.executor_state
        return resolution
    if kind == PauseKind.ERROR:
        decision = entry.get("decision")
        if decision not in ("retry", "skip"):
            raise InvalidContinue(
                f"Cannot continue run - unresolved error requirements: [{requirement.step_name!r}] "
                "(decision must be \"retry\" or \"skip\")"
            )
        resolution.decision = decision
        return resolution
    if kind == PauseKind.ROUTE:
        choices = entry.get("selected_choices")
        if entry.get("confirmed") is False:
            resolution.confirmed = False
            resolution.rejection_feedback = feedback
            return resolution
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
            raise InvalidContinue(
                f"Cannot continue run - unresolved step requirements: [{requirement.step_name!r}] "
                "(selected_choices must be a non-empty list of route names)"
            )
        unknown = [c for c in choices if c not in (requirement.available_choices or [])]
        if unknown:
            raise InvalidContinue(
                f"Invalid selected_choices for router '{requirement.step_name}': {unknown!r} "
                f"not in available choices {requirement.available_choices!r}"
            )
        if len(choices) > 1 and not requirement.allow_multiple_selections:
            raise InvalidContinue(f"Router '{requirement.step_name}' takes one route, got {len(choices)}")
        if len(set(choices)) != len(choices):
            raise InvalidContinue(f"Router '{requirement.step_name}': a route was selected twice")
        resolution.selected_choices = choices
        return resolution
    if requirement.is_post_execution:
        resolution.reviewed_output = requirement.step_output
    if requirement.requires_confirmation:
        resolution.confirmed = _confirmed(requirement, entry)
        if resolution.rejected:
            resolution.rejection_feedback = feedback
            return resolution
    if requirement.requires_user_input:
        resolution.user_input = _user_input(requirement, entry)
        resolution.confirmed = True
    if requirement.is_post_execution and entry.get("edited_output") is not None:
        resolution.edited_output = entry["edited_output"]
    return resolution


def _tool_decisions(requirement: StepRequirement, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each paused tool call's answer: from ``executor_requirements`` entries (AgentOS's
    ``confirmation``, ``confirmation_note``, ``external_execution_result``), matched by id, or a
    top-level ``confirmed`` for every call that needs a confirmation."""
    given = {e.get("id"): e for e in entry.get("executor_requirements") or [] if isinstance(e, dict)}
    decisions: dict[str, dict[str, Any]] = {}
    unresolved = []
    for stored in requirement.executor_requirements or []:
        call = stored["tool_execution"]
        answer = given.get(stored["id"], {})
        decision: dict[str, Any] = {}
        if call.get("requires_confirmation"):
            confirmed = answer.get("confirmation")
            if confirmed is None:  # AgentOS's list sent back as is has "confirmation": null
                confirmed = entry.get("confirmed")
            if not isinstance(confirmed, bool):
                unresolved.append(call["tool_name"])
                continue
            decision["confirmed"] = confirmed
            decision["note"] = answer.get("confirmation_note") or entry.get("rejection_feedback")
        if call.get("external_execution_required"):
            if "external_execution_result" not in answer:
                unresolved.append(call["tool_name"])
                continue
            decision["result"] = answer["external_execution_result"]
        decisions[call["tool_call_id"]] = decision
    if unresolved:
        raise InvalidContinue(
            f"Cannot continue run - unresolved executor requirements for tools {unresolved!r} of step "
            f"'{requirement.step_name}' (confirmation true/false, or external_execution_result)"
        )
    return decisions


def timeout_resolution(requirement: StepRequirement) -> Resolution:
    """What ``on_timeout`` answers when nobody did: approve (a confirmation or review; an
    input pause with the schema's defaults, when they suffice), else skip or cancel."""
    action = OnTimeout(requirement.on_timeout)
    if action is OnTimeout.APPROVE:
        entry: dict[str, Any] = {"requirement_id": requirement.requirement_id, "confirmed": True}  # executor: every call
        try:
            if requirement.kind == PauseKind.ERROR:
                entry["decision"] = "retry"
            resolution = resolve(requirement, [entry])
            resolution.timed_out = True
            return resolution
        except InvalidContinue:  # nothing to approve with (no default input, no route): cancel
            action = OnTimeout.CANCEL
    resolution = Resolution(requirement.requirement_id, requirement.step_path, requirement.kind, timed_out=True)
    if requirement.kind == PauseKind.ERROR and action is OnTimeout.SKIP:
        resolution.decision = "skip"
    else:
        resolution.confirmed = False
        resolution.decision = action.value  # the rejection acts as on_timeout says, not as on_reject
    return resolution
