"""An LLM agent inside a step: it asks its model and streams the answer as events."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from runstream import events as ev
from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepInput
from runstream.models.base import Message, Model, Usage

__all__ = ["Agent"]


class Agent:
    """``Agent(name, model, instructions)``.

    Its events (``RunStarted``, one ``RunContent`` per model chunk,
    ``RunCompleted``) carry the workflow's ``run_id`` plus ``agent_id``,
    ``agent_name``, ``agent_run_id`` and ``workflow_run_id``.
    """

    def __init__(
        self,
        name: str,
        model: Model,
        instructions: str | list[str] | None = None,
        description: str | None = None,
        id: str | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.instructions = "\n".join(instructions) if isinstance(instructions, list) else instructions
        self.description = description
        self.id = id or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

    def messages(self, step_input: StepInput) -> list[Message]:
        system = "\n\n".join(p for p in (self.description, self.instructions) if p)
        prompt: list[Message] = [{"role": "system", "content": system}] if system else []
        return [*prompt, {"role": "user", "content": step_input.message_text()}]

    async def run(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> Any:
        base = {
            **scope.fields(),
            "agent_id": self.id,
            "agent_name": self.name,
            "agent_run_id": str(uuid.uuid4()),
            "workflow_run_id": ctx.run_id,
        }
        started = time.perf_counter()
        await ctx.emit(ev.RUN_STARTED, {**base, "model": self.model.id, "model_provider": self.model.provider})
        parts: list[str] = []
        usage = Usage()
        async for item in self.model.stream(self.messages(step_input)):
            if isinstance(item, Usage):
                usage = item
                continue
            parts.append(item)
            await ctx.emit(ev.RUN_CONTENT, {**base, "content": item})
        content = "".join(parts)
        metrics = {**usage.as_dict(), "duration": round(time.perf_counter() - started, 6)}
        await ctx.emit(ev.RUN_COMPLETED, {**base, "content": content, "metrics": metrics})
        return content
