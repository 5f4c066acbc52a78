"""``runstream``: the command line. Each subcommand is a ``Command``; add one to ``COMMANDS``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import httpx
from websockets.exceptions import WebSocketException

from runstream.cli.command import Command, client_options
from runstream.cli.demo import DEMO
from runstream.cli.follow import ATTACH, REPLAY, RUN
from runstream.cli.pauses import CONTINUE
from runstream.cli.retention import RETENTION
from runstream.cli.runs import CANCEL, RUNS
from runstream.cli.serve import SERVE
from runstream import __version__
from runstream.errors import RunstreamError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: list[Command] = [SERVE, DEMO, RUN, ATTACH, RUNS, REPLAY, CANCEL, CONTINUE, RETENTION]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runstream", description="Serve, start, follow and replay workflow runs.")
    parser.add_argument("--version", action="version", version=f"runstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = client_options()
    for command in COMMANDS:
        parents = [shared] if command.talks_to_server else []
        sub = commands.add_parser(command.name, help=command.help, description=command.help, parents=parents)
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``runstream`` and ``python -m runstream``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except RunstreamError as exc:  # the server's refusal (ServerError) or the CLI's own (AmbiguousRunId...)
        print(f"error: {exc} ({exc.code})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (OSError, httpx.HTTPError, WebSocketException) as exc:
        print(f"error: cannot reach the server: {exc}", file=sys.stderr)
        return 1
    return status
