"""An offline model for the demo and the tests: deterministic, readable, paced.

It needs no key and no network. The text is built from the prompt, so two runs
with the same prompt stream the same tokens; ``pace`` is the pause between
tokens in seconds (``RUNSTREAM_DEMO_PACE`` overrides the default).

With tools it follows a fixed script, so tool calls can be shown offline: when
the system or user messages name a tool (``search_notes``) and no tool has
answered yet, it calls each named tool once, its string parameters set to the
user's message; once the results are in, it answers quoting them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator

import orjson

from runstream.models.base import Message, ToolCall, ToolSpec, Usage

__all__ = ["DemoModel"]

_OPENINGS = [
    "Here is what stands out about {topic}.",
    "Looking closely at {topic}, a few points matter most.",
    "A short brief on {topic} follows.",
]
_SENTENCES = [
    "The core idea is simple, but the details decide whether it works in practice.",
    "Teams that succeed start small, measure early and keep what the numbers support.",
    "The main risk is hidden cost, so every assumption should be written down and checked.",
    "Readers want a clear example first and the general rule second.",
    "A good plan names an owner, a deadline and the one metric that shows progress.",
    "Recent work points the same way: fewer moving parts, faster feedback, plainer language.",
    "The strongest argument is the simplest one that survives a skeptical question.",
    "Each section should answer one question and hand the reader to the next.",
]


class DemoModel:
    """``DemoModel(pace=0.05, tokens=60)``: the no-key model of the demo server."""

    provider = "demo"

    def __init__(self, pace: float | None = None, tokens: int = 60, id: str = "demo-model") -> None:
        env_pace = os.environ.get("RUNSTREAM_DEMO_PACE")
        self.pace = pace if pace is not None else float(env_pace) if env_pace else 0.05
        self.tokens = tokens
        self.id = id

    def script(self, messages: list[Message]) -> list[str]:
        """The tokens this model answers ``messages`` with (words with their spaces)."""
        prompt = _user_text(messages)
        topic = " ".join(prompt.split("\n\n")[0].split()[:8]).rstrip(".") or "the topic"
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
        sentences = [_OPENINGS[seed % len(_OPENINGS)].format(topic=topic), *_tool_findings(messages)]
        i, words = seed, sum(len(s.split()) for s in sentences)
        while words < self.tokens:
            i = (i * 1103515245 + 12345) & 0x7FFFFFFF
            sentences.append(_SENTENCES[i % len(_SENTENCES)])
            words += len(sentences[-1].split())
        tokens = " ".join(sentences).split()[: self.tokens]
        return [w + " " for w in tokens[:-1]] + [tokens[-1]] if tokens else []

    def tool_calls(self, messages: list[Message], tools: list[ToolSpec]) -> list[ToolCall]:
        """The calls this model makes: each tool the prompt names, once, before any result."""
        if any(m.get("role") == "tool" for m in messages):
            return []
        prompt = " ".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "user"))
        named = [t for t in tools if re.search(rf"\b{re.escape(t.name)}\b", prompt)]
        query = _user_text(messages)
        return [
            ToolCall(id=f"demo_call_{i}", name=t.name, arguments=orjson.dumps(_arguments(t, query)).decode())
            for i, t in enumerate(named)
        ]

    async def stream(
        self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **_: object
    ) -> AsyncIterator[str | ToolCall | Usage]:
        calls = self.tool_calls(messages, tools or [])
        tokens = [] if calls else self.script(messages)
        for token in tokens:
            if self.pace:
                await asyncio.sleep(self.pace)
            yield token
        for call in calls:
            yield call
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
        yield Usage(input_tokens=prompt_words, output_tokens=len(tokens) + 8 * len(calls))

    async def aclose(self) -> None:
        """Nothing to release: no network."""


def _user_text(messages: list[Message]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def _arguments(tool: ToolSpec, query: str) -> dict[str, object]:
    """Required parameters from the query: strings get it whole, numbers the first number
    in it (else 1), booleans true; the others keep their defaults."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", query)
    by_type: dict[str, object] = {
        "string": query,
        "integer": int(float(numbers[0])) if numbers else 1,
        "number": float(numbers[0]) if numbers else 1.0,
        "boolean": True,
    }
    properties = tool.parameters.get("properties", {})
    required = tool.parameters.get("required", [])
    arguments = {name: by_type.get(properties.get(name, {}).get("type", "")) for name in required}
    return {name: value for name, value in arguments.items() if value is not None}


def _tool_findings(messages: list[Message]) -> list[str]:
    """One sentence per tool result in the conversation, so the answer shows it used them."""
    results = [str(m.get("content") or "") for m in messages if m.get("role") == "tool"]
    return [f"A tool reports: {' '.join(r.split()[:30])}" for r in results if r]
