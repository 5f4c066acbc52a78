"""``serve APP``: load a ``Server`` (or any ASGI app) from ``module:attribute`` or a file, and serve it."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn
from uvicorn.config import LOG_LEVELS

from runstream.cli.command import Command
from runstream.server import Server
from runstream.server.listen import listen_address
from runstream.server.logs import DEFAULT_LOG_LEVEL, log_level_of

__all__ = ["SERVE", "load_app"]

_NAMES = ("server", "app")


def load_app(spec: str) -> Any:
    """``pkg.module:attr``, ``path/to/file.py[:attr]`` or ``pkg.module``: the ``Server`` (or ASGI
    app) it names, else its ``server`` or ``app``, else its only ``Server``."""
    target, _, attribute = spec.partition(":")
    module = _load_module(target)
    if attribute:
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise SystemExit(f"error: {target} has no attribute {attribute!r}") from None
    for name in _NAMES:
        if isinstance(getattr(module, name, None), Server):
            return getattr(module, name)
    servers = [v for v in vars(module).values() if isinstance(v, Server)]
    if len(servers) == 1:
        return servers[0]
    if hasattr(module, "app"):
        return module.app
    raise SystemExit(f"error: {target} has no Server (name it `server`, or use {target}:NAME)")


def _load_module(target: str) -> ModuleType:
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise SystemExit(f"error: {target}: no such file")
        sys.path.insert(0, str(path.resolve().parent))  # its sibling modules import as they would run
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise SystemExit(f"error: cannot load {target}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(target)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="module:attribute or path/to/file.py holding a Server (`server` or `app`)")
    parser.add_argument("--host", help="default RUNSTREAM_HOST, HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, help="default RUNSTREAM_PORT, PORT or 7777")
    parser.add_argument("--log-level", choices=list(LOG_LEVELS),
                        help=f"default RUNSTREAM_LOG_LEVEL or {DEFAULT_LOG_LEVEL}")
    parser.add_argument("--database-url", help="sqlite:///PATH or postgresql://... (sets RUNSTREAM_DATABASE_URL "
                        "before APP is loaded, so it applies to servers that do not set their own)")


def _serve(args: argparse.Namespace) -> int:
    if args.database_url:
        os.environ["RUNSTREAM_DATABASE_URL"] = args.database_url
    if args.log_level:
        os.environ["RUNSTREAM_LOG_LEVEL"] = args.log_level  # for the app's own `serve()`, if it calls one
    app = load_app(args.app)
    if isinstance(app, Server):
        app.serve(host=args.host, port=args.port, log_level=args.log_level)
    else:
        host, port = listen_address(args.host, args.port)
        uvicorn.run(app, host=host, port=port, log_level=log_level_of(args.log_level))
    return 0


SERVE = Command("serve", "serve the workflows of APP", _configure, _serve, talks_to_server=False)
