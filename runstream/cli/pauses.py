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
from rich.markup import escape
from rich.text import Text

from runstream.cli.command import Command
from runstream.cli.display import format_arguments, format_output

__all__ = ["CONTINUE", "PAUSED_EXIT", "answer_from_args", "ask", "describe", "explain", "review_text", "typed_value"]

PAUSED_EXIT = 3
"""The exit status of ``run``/``attach`` when the run waits for a person and no one is at a terminal."""

_TRUE = {"y", "yes", "true", "1", "on"}
_FALSE = {"n", "no", "false", "0", "off"}


def typed_value(text: str, field_type: str) -> Any:
    """A command-line value as the schema's type wants it; the server checks the result."""
    try:
        if field_type == "int":
            return int(text)
        if field_type == "float":
            return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {'a whole number' if field_type == 'int' else 'a number'}") from None
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


_REJECT = "--reject [--feedback TEXT]"


def _question(requirement: dict[str, Any]) -> str:
    """What the pause asks, in the workflow's own words when it has them."""
    kind, name = requirement.get("kind"), requirement.get("step_name")
    if kind == "route":
        routes = ", ".join(requirement.get("available_choices") or [])
        return str(requirement.get("user_input_message") or f"pick a route of {name!r} from: {routes}")
    if kind == "executor":
        tools = ", ".join(f"{r['tool_execution']['tool_name']}({format_arguments(r['tool_execution'].get('tool_args'))})"
                          for r in requirement.get("executor_requirements") or [])
        return f"agent {requirement.get('executor_name')!r} wants to call {tools}"
    if kind == "error":
        return f"step {name!r} failed: {requirement.get('error_message')}"
    if kind in ("output_review", "iteration_review"):
        return str(requirement.get("output_review_message") or f"review the output of {name!r}")
    if requirement.get("requires_user_input"):
        return str(requirement.get("user_input_message") or f"input for {name!r}")
    return str(requirement.get("confirmation_message") or f"confirm step {name!r}")


def _options(requirement: dict[str, Any]) -> tuple[str, str]:
    """The ``continue`` options of the usual answer, and the others."""
    kind = requirement.get("kind")
    if kind == "route":
        choices = requirement.get("available_choices") or ["ROUTE"]
        return f"--choose {choices[0]}", "or another route: " + ", ".join(choices)
    if kind == "error":
        return "--retry", "or --skip"
    if kind == "output_review":
        return "--confirm", f"or --confirm --edit TEXT, or {_REJECT}"
    if kind in ("executor", "iteration_review") or not requirement.get("requires_user_input"):
        return "--confirm", f"or {_REJECT}"
    fields = [f"--input {f['name']}={_placeholder(f)}" for f in requirement.get("user_input_schema") or []]
    return " ".join(fields) or "--input NAME=VALUE", ("or " + _REJECT if requirement.get("requires_confirmation") else "")


def _placeholder(field: dict[str, Any]) -> str:
    allowed = field.get("allowed_values")
    if allowed:
        return str(allowed[0])
    return {"int": "N", "float": "X", "bool": "yes"}.get(field.get("field_type", "str"), "TEXT")


def describe(requirement: dict[str, Any]) -> str:
    """One line saying what a pause asks and which options answer it."""
    usual, others = _options(requirement)
    fields = ", ".join(f["name"] for f in requirement.get("user_input_schema") or [])
    asked = f"{_question(requirement)} ({fields})" if fields and requirement.get("kind") == "user_input" else _question(requirement)
    return f"{asked} ({usual} {others})".replace(" )", ")")


def _details(requirement: dict[str, Any]) -> list[str]:
    """What a person needs to answer: the output under review, the input fields."""
    kind = requirement.get("kind")
    if kind in ("output_review", "iteration_review"):
        return [f"  | {line}" for line in review_text(requirement).splitlines() or [""]]
    lines = []
    for field in requirement.get("user_input_schema") or [] if requirement.get("requires_user_input") else []:
        allowed = field.get("allowed_values")
        about = "; ".join(x for x in (field.get("description"), f"one of {', '.join(map(str, allowed))}" if allowed else None) if x)
        lines.append(f"  {field['name']} ({field.get('field_type', 'str')}){': ' + about if about else ''}")
    return lines


def review_text(requirement: dict[str, Any]) -> str:
    """The output a review asks about, as text (a StepOutput's ``content``, or the value itself)."""
    output = requirement.get("step_output")
    if isinstance(output, dict) and "content" in output and output.get("is_step_output", True):
        output = output["content"]
    return output if isinstance(output, str) else format_output(output)


def explain(requirement: dict[str, Any], run_id: str) -> str:
    """What the pause asks and the command that answers it, for a person not at a terminal."""
    usual, others = _options(requirement)
    lines = [f"Run {run_id} is paused at {requirement.get('step_name')!r}: {_question(requirement)}",
             *_details(requirement),
             f"Answer with: runstream continue {run_id} {usual}" + (f"   ({others})" if others else "")]
    return "\n".join(lines)


def ask(console: Console, requirement: dict[str, Any], read: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Ask the person at the terminal for the answer to ``requirement``."""
    prompt = read or (lambda question: console.input(Text(question)))
    kind, name = requirement.get("kind"), requirement.get("step_name")
    console.print(f"\n[bold yellow]Run paused[/] at {escape(repr(name))}: {escape(_question(requirement))}")
    if kind == "route":
        choices: list[str] = requirement.get("available_choices") or []
        for number, choice in enumerate(choices, 1):
            console.print(f"  {number}. {choice}", markup=False)
        several = bool(requirement.get("allow_multiple_selections"))
        while True:
            picked = [_choice(text.strip(), choices) for text in prompt("Route (number or name): ").split(",")]
            if not all(picked):
                console.print("[red]Not one of the routes above[/]")
            elif len(picked) > 1 and not several:
                console.print("[red]Pick one route: this router takes one[/]")
            else:
                return {"selected_choices": picked}
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
    reviewing = kind in ("output_review", "iteration_review")
    if reviewing:
        console.print(review_text(requirement), markup=False, highlight=False)
    if requirement.get("requires_confirmation"):
        answer["confirmed"] = _yes(prompt, "Approve this output?" if reviewing else "Approve?")
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
        about = f" {field['description']}" if field.get("description") else ""
        while True:
            text = prompt(f"{field['name']} ({field.get('field_type', 'str')}{hint}){about}: ").strip()
            if not text and not field.get("required", True):
                break
            try:
                values[field["name"]] = typed_value(text, field.get("field_type", "str"))
                break
            except ValueError as exc:
                console.print(str(exc), style="red", markup=False, highlight=False)
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
