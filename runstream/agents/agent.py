"""An LLM agent inside a step: it asks its model, runs the tools the model asks
for, feeds their results back, and streams everything as events."""

from __future__ import annotations

import asyncio
import io
import re
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn

import orjson
from pydantic import BaseModel, ValidationError

from runstream import events as ev
from runstream.agents.tools import Tool, as_tool
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import pause, requirement
from runstream.engine.hitl import HumanReview, PauseKind
from runstream.engine.io import StepInput
from runstream.engine.serialize import to_jsonable
from runstream.errors import ModelError, StepFailed
from runstream.metrics import MODEL_ERRORS, MODEL_TOKENS
from runstream.tracing import span
from runstream.models.base import Message, Model, ToolCall, Usage

_EXECUTOR = frozenset({PauseKind.EXECUTOR})

__all__ = ["Agent"]

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Agent:
    """``Agent(name, model, instructions=..., tools=[fn, ...], output_schema=Model)``.

    Its events (``RunStarted``, ``ToolCallStarted``/``ToolCallCompleted`` per
    tool call, one ``RunContent`` per model chunk, ``RunCompleted`` with token
    usage) carry the workflow's ``run_id`` plus ``agent_id``, ``agent_name``,
    ``agent_run_id`` and ``workflow_run_id``.

    ``max_tool_calls`` bounds the tool calls of one run, so a model that never
    stops calling tools fails its step instead of running for ever.
    ``add_history`` shows the model the last ``num_history_runs`` runs of the
    same session (their input and output).
    """

    def __init__(
        self,
        name: str,
        model: Model,
        instructions: str | list[str] | None = None,
        description: str | None = None,
        id: str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        output_schema: type[BaseModel] | None = None,
        add_history: bool = False,
        num_history_runs: int = 3,
        max_tool_calls: int = 20,
    ) -> None:
        self.name = name
        self.model = model
        self.instructions = "\n".join(instructions) if isinstance(instructions, list) else instructions
        self.description = description
        self.id = id or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        tool_list = [as_tool(t) for t in tools]
        self.tools = {t.name: t for t in tool_list}
        if len(self.tools) < len(tool_list):
            raise ValueError(f"agent {name!r}: two tools share a name: {[t.name for t in tool_list]}")
        self.output_schema = output_schema
        self.add_history = add_history
        self.num_history_runs = num_history_runs
        self.max_tool_calls = max_tool_calls

    def messages(self, step_input: StepInput, history: Sequence[dict[str, Any]] = ()) -> list[Message]:
        """System prompt, the session's earlier runs (with ``add_history``), then this step's task."""
        system = "\n\n".join(p for p in (self.description, self.instructions) if p)
        prompt: list[Message] = [{"role": "system", "content": system}] if system else []
        if self.add_history and self.num_history_runs > 0:
            for run in history[-self.num_history_runs :]:
                prompt.append({"role": "user", "content": _text(run.get("input"))})
                prompt.append({"role": "assistant", "content": _text(run.get("output"))})
        return [*prompt, {"role": "user", "content": _task_text(step_input)}]

    async def run(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> Any:
        base = {
            **scope.fields(),
            "agent_id": self.id,
            "agent_name": self.name,
            "agent_run_id": str(uuid.uuid4()),
            "workflow_run_id": ctx.run_id,
        }
        started = time.perf_counter()
        ctx.use_model(self.model)
        answers = ctx.answers(scope.path, _EXECUTOR)
        usage = Usage()
        if answers:  # continued after its paused tool calls: carry on from where it stopped
            state = answers[-1].executor_state or {}
            base["agent_run_id"] = state.get("agent_run_id", base["agent_run_id"])
            messages: list[Message] = list(state.get("messages", []))
            calls_made = int(state.get("calls_made", 0))
            decisions = answers[-1].tool_decisions or {}
            calls = [ToolCall(c["id"], c["name"], c["arguments"]) for c in state.get("calls", [])]
            messages.extend(await asyncio.gather(*(self._call_tool(c, ctx, base, decisions.get(c.id)) for c in calls)))
        else:
            await ctx.emit(ev.RUN_STARTED, {**base, "model": self.model.id, "model_provider": self.model.provider})
            messages = self.messages(step_input, await ctx.session_history() if self.add_history else ())
            calls_made = 0
        while True:
            content, calls, turn_usage = await self._turn(messages, ctx, base)
            usage += turn_usage
            if not calls:
                break
            calls_made += len(calls)
            if calls_made > self.max_tool_calls:
                ctx.add_metrics(usage.as_dict())
                raise StepFailed(
                    f"Agent {self.name!r} exceeded max_tool_calls={self.max_tool_calls}: "
                    f"the model asked for {calls_made} tool calls"
                )
            messages.append(
                {"role": "assistant", "content": content or None, "tool_calls": [c.as_dict() for c in calls]}
            )
            if any(self._needs_person(c) for c in calls):
                ctx.add_metrics(usage.as_dict())
                await self._pause(ctx, scope, base, messages, calls, calls_made)
            messages.extend(await asyncio.gather(*(self._call_tool(c, ctx, base) for c in calls)))
        ctx.add_metrics(usage.as_dict())
        result = self._parse(content)
        metrics = {**usage.as_dict(), "duration": round(time.perf_counter() - started, 6)}
        ctx.add_step_metrics(scope.step_name, "agent", self.name, metrics)
        await ctx.emit(ev.RUN_COMPLETED, {**base, "content": to_jsonable(result), "metrics": metrics})
        return result

    async def _turn(
        self, messages: list[Message], ctx: RunContext, base: dict[str, Any]
    ) -> tuple[str, list[ToolCall], Usage]:
        """One model call: stream its text as ``RunContent``, collect its tool calls.

        The text accumulates in one buffer, ~1 byte a character: a list of the chunks
        would hold a str object per token (~70 bytes each, 70 MB for a million tokens)."""
        options: dict[str, Any] = {}
        if self.tools:
            options["tools"] = [t.spec for t in self.tools.values()]
        if self.output_schema is not None:
            options["output_schema"] = self.output_schema
        text = io.StringIO()
        calls: list[ToolCall] = []
        usage = Usage()
        emit_content = ctx.content_emitter(ev.RUN_CONTENT, base)
        provider = self.model.provider
        attributes = {"gen_ai.system": provider, "gen_ai.request.model": self.model.id, "runstream.run_id": ctx.run_id}
        try:
            with span(f"model {self.model.id}", attributes):
                async for item in self.model.stream(messages, **options):
                    if isinstance(item, str):
                        text.write(item)
                        await emit_content(item)
                    elif isinstance(item, ToolCall):
                        calls.append(item)
                    else:
                        usage = item
        except ModelError:
            MODEL_ERRORS.labels(provider).inc()
            raise
        MODEL_TOKENS.labels(provider, "input").inc(usage.input_tokens)
        MODEL_TOKENS.labels(provider, "output").inc(usage.output_tokens)
        return text.getvalue(), calls, usage

    def _needs_person(self, call: ToolCall) -> bool:
        tool = self.tools.get(call.name)
        return tool is not None and (tool.requires_confirmation or tool.external_execution)

    async def _pause(
        self, ctx: RunContext, scope: StepScope, base: dict[str, Any], messages: list[Message],
        calls: list[ToolCall], calls_made: int,
    ) -> NoReturn:
        """Stop for a person to confirm (or execute) tool calls: ``StepExecutorPaused``. The
        conversation so far is stored with the requirement, so the continue asks no model again."""
        now = datetime.now(timezone.utc).isoformat()
        pending = []
        for call in calls:
            tool = self.tools.get(call.name)
            if tool is None or not (tool.requires_confirmation or tool.external_execution):
                continue
            execution: dict[str, Any] = {"tool_call_id": call.id, "tool_name": call.name,
                                         "tool_args": _arguments(call.arguments)}
            if tool.requires_confirmation:
                execution["requires_confirmation"] = True
            if tool.external_execution:
                execution["external_execution_required"] = True
            pending.append({"id": call.id, "created_at": now, "tool_execution": execution})
        executor = {"executor_id": self.id, "executor_name": self.name, "executor_run_id": base["agent_run_id"],
                    "executor_type": "agent"}
        state = {"messages": messages, "calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
                 "calls_made": calls_made, "agent_run_id": base["agent_run_id"]}
        answered = len(ctx.answers(scope.path, _EXECUTOR))
        review = HumanReview()
        req = requirement(ctx, scope, review, PauseKind.EXECUTOR, answered, "Step", requires_executor_input=True,
                          executor_requirements=pending, executor_state=state, **executor)
        await pause(ctx, scope, req, ev.STEP_EXECUTOR_PAUSED, executor_requirements=pending, **executor)

    async def _call_tool(
        self, call: ToolCall, ctx: RunContext, base: dict[str, Any], decision: dict[str, Any] | None = None
    ) -> Message:
        """Run one tool call between its two events; an error becomes the model's tool result.
        ``decision``: a person's answer to a paused call (rejected, or executed elsewhere)."""
        tool = {"tool_call_id": call.id, "tool_name": call.name, "tool_args": _arguments(call.arguments)}
        await ctx.emit(ev.TOOL_CALL_STARTED, {**base, "tool": tool})
        started = time.perf_counter()
        error: str | None = None
        result: Any = None
        try:
            with span(f"tool {call.name}", {"runstream.run_id": ctx.run_id, "runstream.tool_call_id": call.id}):
                if decision is not None and decision.get("confirmed") is False:
                    note = decision.get("note")
                    result = f"The user rejected this tool call{f': {note}' if note else ''}; it was not run."
                elif decision is not None and "result" in decision:
                    result = decision["result"]
                else:
                    result = await self._invoke(call, tool["tool_args"])
        except Exception as exc:  # reported to the model, which may recover; the run goes on
            error = f"{type(exc).__name__}: {exc}"
        duration = round(time.perf_counter() - started, 6)
        shown = to_jsonable(result) if error is None else f"Error: {error}"
        done = {
            **tool,
            "result": shown,
            "tool_call_error": error is not None,
            "error": error,
            "metrics": {"duration": duration},
        }
        await ctx.emit(ev.TOOL_CALL_COMPLETED, {**base, "tool": done, "content": shown})
        return {"role": "tool", "tool_call_id": call.id, "content": _text(shown)}

    async def _invoke(self, call: ToolCall, arguments: Any) -> Any:
        tool = self.tools.get(call.name)
        if tool is None:
            raise LookupError(f"no tool named {call.name!r}; the tools are {sorted(self.tools)}")
        if not isinstance(arguments, dict):
            raise ValueError(f"arguments must be a JSON object, got {call.arguments!r}")
        return await tool.call(arguments)

    def _parse(self, content: str) -> Any:
        """The answer as ``output_schema`` when there is one; a mismatch fails the step."""
        if self.output_schema is None:
            return content
        fenced = _FENCE.match(content)
        try:
            return self.output_schema.model_validate_json(fenced.group(1) if fenced else content)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])
            raise StepFailed(
                f"Agent {self.name!r}: the answer does not match {self.output_schema.__name__}: {problems}"
            ) from None


def _task_text(step_input: StepInput) -> str:
    """What the agent is asked: the run's input, and the previous step's output when there is one."""
    task = _text(step_input.input)
    previous = step_input.previous_step_content
    if previous is None:
        return task
    previous_text = _text(previous)
    return previous_text if not task or previous_text == task else f"{task}\n\nPrevious step output:\n{previous_text}"


def _arguments(text: str) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(to_jsonable(value)).decode()
