"""An offline model for the demo and the tests: deterministic, readable, paced.

It needs no key and no network. The text is built from the prompt, so two runs
with the same prompt stream the same tokens; ``pace`` is the pause between
tokens in seconds (``RUNSTREAM_DEMO_PACE`` overrides the default).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

from runstream.models.base import Message, Usage

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
        prompt = str(messages[-1].get("content", "")) if messages else ""
        topic = " ".join(prompt.split()[:8]).rstrip(".") or "the topic"
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
        sentences = [_OPENINGS[seed % len(_OPENINGS)].format(topic=topic)]
        i = seed
        while sum(len(s.split()) for s in sentences) < self.tokens:
            i = (i * 1103515245 + 12345) & 0x7FFFFFFF
            sentences.append(_SENTENCES[i % len(_SENTENCES)])
        words = " ".join(sentences).split()[: self.tokens]
        return [w + " " for w in words[:-1]] + [words[-1]] if words else []

    async def stream(self, messages: list[Message]) -> AsyncIterator[str | Usage]:
        tokens = self.script(messages)
        for token in tokens:
            if self.pace:
                await asyncio.sleep(self.pace)
            yield token
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
        yield Usage(input_tokens=prompt_words, output_tokens=len(tokens))
