"""Real server processes for deployment tests: demo replicas on PostgreSQL + Redis, nginx in front."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port
from tests.demo_process import DEMO, ROOT, port_open

__all__ = ["NGINX_CONF", "RedisServer", "Replica", "nginx_front", "wait_port"]

NGINX_CONF = ROOT / "deploy" / "nginx" / "runstream.conf"


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not open port {port} (exit code {proc.poll()})")
        time.sleep(0.05)


class Replica:
    """The demo server as one replica: ``start``, ``stop`` (SIGTERM, as a deploy does), ``kill``."""

    def __init__(self, database_url: str, redis_url: str, log: Path, pace: str = "0.01", **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "RUNSTREAM_DATABASE_URL": database_url,
            "RUNSTREAM_REDIS_URL": redis_url,
            "RUNSTREAM_DEMO_PACE": pace,
            **env,
        }
        self.env.pop("OPENAI_API_KEY", None)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, str(DEMO)], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        wait_port(self.port, self.proc, "replica")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@contextmanager
def nginx_front(upstreams: Sequence[int], prefix: Path) -> Iterator[int]:
    """``deploy/nginx/runstream.conf`` in front of ``upstreams``, on an ephemeral port: nginx runs
    in the foreground as this test's child, with its own prefix for logs, pid and temp files."""
    port = free_port()
    site = NGINX_CONF.read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in upstreams)
    site, n_upstream = re.subn(r"(upstream runstream \{\n)(?:    server [^\n]*\n)+", lambda m: m.group(1) + servers, site)
    site, n_listen = re.subn(r"listen \d+;", f"listen 127.0.0.1:{port};", site)
    assert n_upstream == 1 and n_listen == 1, "deploy/nginx/runstream.conf no longer has the expected shape"
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "runstream.conf").write_text(site)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # as root, workers would run as nobody
    temp = prefix / "temp"
    (prefix / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {prefix}/logs/access.log;\n"
        f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;\n"
        f"  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n"
        f"  include {prefix}/runstream.conf;\n"
        "}\n"
    )
    nginx = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "logs" / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, proc, "nginx")
        yield port
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: let open connections end
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class RedisServer:
    """A redis-server of this test's own on an ephemeral port, to stop and start again
    (other tests share the machine's Redis on 6379)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc, "redis-server")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
