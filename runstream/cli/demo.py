"""``demo``: serve the demo workflow that ships in the package (``runstream.demo``), no repository needed."""

from __future__ import annotations

import argparse
import os

from uvicorn.config import LOG_LEVELS

from runstream.cli.command import Command
from runstream.demo import DEMO_DATABASE_URL, content_creation_workflow
from runstream.server import Server
from runstream.server.logs import DEFAULT_LOG_LEVEL

__all__ = ["DEMO"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="default RUNSTREAM_HOST, HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, help="default RUNSTREAM_PORT, PORT or 7777")
    parser.add_argument("--database-url", help=f"default RUNSTREAM_DATABASE_URL or {DEMO_DATABASE_URL}")
    parser.add_argument("--log-level", choices=list(LOG_LEVELS),
                        help=f"default RUNSTREAM_LOG_LEVEL or {DEFAULT_LOG_LEVEL}")


def _demo(args: argparse.Namespace) -> int:
    database = args.database_url or os.environ.get("RUNSTREAM_DATABASE_URL") or DEMO_DATABASE_URL
    server = Server(workflows=[content_creation_workflow], database_url=database)
    server.serve(host=args.host, port=args.port, log_level=args.log_level)
    return 0


DEMO = Command("demo", "serve the demo workflow (content-creation-workflow, offline)", _configure, _demo,
               talks_to_server=False)
