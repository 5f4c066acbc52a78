"""A CLI subcommand: its name, its options and what it does.

``runstream/cli/main.py`` lists them; a new subcommand is a ``Command`` in a
module of its own plus one line in that list.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

from runstream.client import DEFAULT_URL, Client

__all__ = ["Command", "client_options", "make_client"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    talks_to_server: bool = True  # adds --url, --token, --json


def client_options() -> argparse.ArgumentParser:
    """The options every command that talks to a server shares."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--url", default=os.environ.get("RUNSTREAM_URL", DEFAULT_URL),
                        help="server URL (env RUNSTREAM_URL, default %(default)s)")
    parser.add_argument("--token", default=os.environ.get("RUNSTREAM_TOKEN"),
                        help="the server's security key or a JWT (env RUNSTREAM_TOKEN)")
    parser.add_argument("--json", action="store_true", help="machine output: one JSON object per line")
    parser.add_argument("--transport", choices=["ws", "sse"], default="ws", help="how to follow runs")
    return parser


def make_client(
    args: argparse.Namespace, on_reconnect: Callable[[BaseException, float], None] | None = None
) -> Client:
    return Client(args.url, token=args.token, transport=args.transport, on_reconnect=on_reconnect)
