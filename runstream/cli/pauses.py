"""``continue``, and the questions ``run`` and ``attach`` ask a person at a terminal when a run pauses.

An answer is a dict of ``Client.continue_run`` keywords. ``answer_from_args`` builds it
from the command line; ``ask`` asks for it (confirm, input, route, review, error
decision), reading the stored requirement the server sent with ``WorkflowPaused``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from runstream.cli.command import Command

__all__ = ["CONTINUE", "PAUSED_EXIT", "answer_from_args", "ask", "describe", "typed_value"]

PAUSED_EXIT = 3
"""The exit status of ``run``/``attach`` when the run waits for a person and no one is at a terminal."""

_TRUE = {"y", "yes", "true", "1", "on"}
_FALSE = {"n", "no", "false", "0", "off"}


def typed_value(text: str, field_type: str) -> Any:
    """A command-line value as the schema's type wants it; the server checks the result."""
    if field_type == "int":
        return int(text)
    if field_type == "float":
        return float(text)
    if field_type == "bool":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{text!r} is not yes or no")
    return text


def _types(requirement: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f.get("field_type", "str") for f in requirement.get("user_input_schema") or []}


def answer_from_args(args: argparse.Namespace, requirement: dict[str, Any]) -> dict[str, Any]:
    """The answer ``runstream continue`` was given, typed by the stored requirement's schema."""
    answer: dict[str, Any] = {}
    if args.confirm or args.reject:
        answer["confirmed"] = bool(args.confirm)
    if args.feedback is not None:
        answer["rejection_feedback"] = args.feedback
    if args.edit is not None:
        answer["edited_output"] = args.edit
    if args.input:
        types = _types(requirement)
        values = {}
        for item in args.input:
            name, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"error: --input takes name=value, got {item!r}")
            try:
                values[name] = typed_value(value, types.get(name, "str"))
            except ValueError as exc:
                raise SystemExit(f"error: --input {name}: {exc}") from None
        answer["user_input"] = values
    if args.choose:
        answer["selected_choices"] = args.choose
    if args.retry or args.skip:
        answer["decision"] = "retry" if args.retry else "skip"
    if not answer:
        raise SystemExit(f"error: nothing to answer with; the run asks: {describe(requirement)}")
    return answer


def describe(requirement: dict[str, Any]) -> str:
    """One line saying what a pause asks and which options answer it."""
    kind, name = requirement.get("kind"), requirement.get("step_name")
    if kind == "route":
        return f"pick a route of {name!r} from {requirement.get('available_choices')} (--choose NAME)"
    if kind == "executor":
        tools = ", ".join(f"{r['tool_execution']['tool_name']}({r['tool_execution'].get('tool_args')})"
                          for r in requirement.get("executor_requirements") or [])
        return f"agent {requirement.get('executor_name')!r} wants to call {tools} (--confirm or --reject [--feedback TEXT])"
    if kind == "error":
        return f"step {name!r} failed: {requirement.get('error_message')} (--retry or --skip)"
    if kind in ("output_review", "iteration_review"):
        return f"review the output of {name!r} (--confirm [--edit TEXT] or --reject [--feedback TEXT])"
    if requirement.get("requires_user_input"):
        fields = ", ".join(f["name"] for f in requirement.get("user_input_schema") or [])
        return f"input for {name!r}: {fields} (--input name=value ...)"
    return f"{requirement.get('confirmation_message') or f'confirm step {name!r}'} (--confirm or --reject [--feedback TEXT])"


def ask(console: Console, requirement: dict[str, Any], read: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Ask the person at the terminal for the answer to ``requirement``."""
    prompt = read or (lambda question: console.input(Text(question)))
    kind, name = requirement.get("kind"), requirement.get("step_name")
    console.print(f"\n[bold yellow]Run paused[/] at {name!r}: {describe(requirement)}")
    if kind == "route":
        choices: list[str] = requirement.get("available_choices") or []
        for number, choice in enumerate(choices, 1):
            console.print(f"  {number}. {choice}")
        while True:
            picked = [_choice(text.strip(), choices) for text in prompt("Route (number or name): ").split(",")]
            if all(picked) and (len(picked) == 1 or requirement.get("allow_multiple_selections")):
                return {"selected_choices": picked}
            console.print("[red]Not one of the routes above[/]")
    if kind == "error":
        while (text := prompt("Retry or skip? [r/s] ").strip().lower()) not in ("r", "s", "retry", "skip"):
            pass
        return {"decision": "retry" if text.startswith("r") else "skip"}
    answer: dict[str, Any] = {}
    if kind == "executor":
        answer["confirmed"] = _yes(prompt, "Allow the tool calls?")
        if not answer["confirmed"]:
            feedback = prompt("Why not (optional, the agent is told): ").strip()
            if feedback:
                answer["rejection_feedback"] = feedback
        return answer
    if kind in ("output_review", "iteration_review"):
        output = requirement.get("step_output")
        console.print(str(output.get("content") if isinstance(output, dict) else output), markup=False)
    if requirement.get("requires_confirmation"):
        answer["confirmed"] = _yes(prompt, requirement.get("output_review_message") or "Approve?")
        if not answer["confirmed"]:
            feedback = prompt("Feedback (optional): ").strip()
            if feedback:
                answer["rejection_feedback"] = feedback
            return answer
        if kind == "output_review":
            edited = prompt("Edited output (Enter keeps it): ")
            if edited.strip():
                answer["edited_output"] = edited
    if requirement.get("requires_user_input"):
        answer["user_input"] = _inputs(console, prompt, requirement.get("user_input_schema") or [])
    return answer


def _choice(text: str, choices: list[str]) -> str | None:
    if text.isdigit() and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1]
    return text if text in choices else None


def _yes(prompt: Callable[[str], str], question: str) -> bool:
    while True:
        text = prompt(f"{question} [y/n] ").strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE


def _inputs(console: Console, prompt: Callable[[str], str], schema: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in schema:
        allowed = field.get("allowed_values")
        hint = f" one of {allowed}" if allowed else ""
        while True:
            text = prompt(f"{field['name']} ({field.get('field_type', 'str')}{hint}): ").strip()
            if not text and not field.get("required", True):
                break
            try:
                values[field["name"]] = typed_value(text, field.get("field_type", "str"))
                break
            except ValueError as exc:
                console.print(f"[red]{exc}[/]")
    return values


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="a run id, or a prefix of one that no other run shares")
    yes_no = parser.add_mutually_exclusive_group()
    yes_no.add_argument("--confirm", action="store_true", help="approve the step (or the reviewed output)")
    yes_no.add_argument("--reject", action="store_true", help="reject it: the step's on_reject applies")
    parser.add_argument("--feedback", help="why it was rejected (the step gets it on a retry)")
    parser.add_argument("--edit", help="an approved review's output, edited")
    parser.add_argument("--input", action="append", metavar="NAME=VALUE", help="a user input value (repeatable)")
    parser.add_argument("--choose", action="append", metavar="ROUTE", help="the route a Router takes (repeatable)")
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--retry", action="store_true", help="after a step error: run the step again")
    decision.add_argument("--skip", action="store_true", help="after a step error: skip the step")
    parser.add_argument("--no-follow", action="store_true", help="return once answered, without following the run")


def _continue(args: argparse.Namespace) -> int:
    from runstream.cli.follow import continue_and_follow

    return continue_and_follow(args)


CONTINUE = Command("continue", "answer a paused run (confirm, reject, input, route, retry/skip) and follow it",
                   _configure, _continue)
