"""Plain Python functions as tools an agent's model can call.

The JSON schema the model sees is derived from the signature (through a
pydantic model, which also validates and coerces the arguments the model
sends); the description is the docstring's first paragraph, and each
parameter's description its line under ``Args:``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, Field, ValidationError, create_model

from runstream.models.base import ToolSpec

__all__ = ["Tool", "ToolArgumentsError", "as_tool", "tool"]

_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Notes?)\s*:\s*$")


class ToolArgumentsError(ValueError):
    """The model's arguments do not fit the tool's signature; the model is told why."""


class Tool:
    """A function the model may call. Build one with ``tool(fn)`` or pass the function itself."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        requires_confirmation: bool = False,
        external_execution: bool = False,
    ) -> None:
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else summary
        self.arguments_model = _arguments_model(fn, self.name, arg_docs)
        self.spec = ToolSpec(self.name, self.description, _schema(self.arguments_model))
        self.requires_confirmation = requires_confirmation
        """A person approves each call first: the run pauses (``StepExecutorPaused``)."""
        self.external_execution = external_execution
        """The call is not run here: the run pauses until a person (or a system) gives its result."""

    async def call(self, arguments: dict[str, Any]) -> Any:
        """Validate ``arguments`` and run the function (sync ones in a worker thread)."""
        try:
            validated = self.arguments_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {problems}") from None
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        return await asyncio.to_thread(self.fn, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_confirmation: bool = False,
    external_execution: bool = False,
) -> Any:
    """``@tool`` or ``@tool(name=..., description=...)``: overrides what the docstring says.
    ``requires_confirmation`` / ``external_execution``: each call pauses the run for a person."""

    def make(f: Callable[..., Any]) -> Tool:
        return Tool(f, name, description, requires_confirmation, external_execution)

    return make if fn is None else make(fn)


def as_tool(item: Tool | Callable[..., Any]) -> Tool:
    if isinstance(item, Tool):
        return item
    if callable(item):
        return Tool(item)
    raise TypeError(f"not a tool: {item!r}")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and the descriptions under ``Args:`` (Google style)."""
    first = doc.strip().split("\n\n")[0]
    summary = "" if _SECTION.match(first.strip()) else " ".join(first.split())
    args: dict[str, str] = {}
    current: str | None = None
    entry_indent: int | None = None
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        section = _SECTION.match(stripped)
        if section:
            in_args, current, entry_indent = section.group(1) in ("Args", "Arguments", "Parameters"), None, None
            continue
        if not in_args or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(stripped)
        if match and (entry_indent is None or indent <= entry_indent):
            entry_indent = indent
            current = match.group(1).lstrip("*")
            args[current] = match.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {stripped}".strip()
    return summary, args


def _arguments_model(fn: Callable[..., Any], name: str, docs: dict[str, str]) -> type[BaseModel]:
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), Field(default, description=docs.get(param.name)))
    return create_model(f"{name}_arguments", **fields)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema
