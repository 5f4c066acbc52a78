"""Where ``Server.serve`` listens, and binding it before anything else starts.

The port is bound first, so a busy port is reported at once, before the
database is opened or a crashed run is resumed. The address comes from the
arguments, else ``RUNSTREAM_HOST``/``RUNSTREAM_PORT``, else ``HOST``/``PORT``
(what hosting platforms set), else ``127.0.0.1:7777``: local only unless asked.
"""

from __future__ import annotations

import errno
import os
import socket

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "bind", "listen_address"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7777


def listen_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """The host and port to serve on; a non-numeric port in the environment is a clear error."""
    host = host or os.environ.get("RUNSTREAM_HOST") or os.environ.get("HOST") or DEFAULT_HOST
    if port is None:
        for name in ("RUNSTREAM_PORT", "PORT"):
            text = os.environ.get(name)
            if text:
                if not text.isdigit() or not 0 <= int(text) <= 65535:
                    raise SystemExit(f"error: {name}={text!r} is not a port number")
                port = int(text)
                break
        else:
            port = DEFAULT_PORT
    return host, port


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port``, or exit with a message saying what is wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"error: port {port} on {host} is already in use (another server is running there); "
                f"stop it, or choose another port (PORT=... or --port)"
            ) from None
        raise SystemExit(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
