"""Run the whole benchmark suite and write the results table.

    .venv/bin/python bench/run.py            # full sizes (about 15 minutes)
    .venv/bin/python bench/run.py --quick    # reduced sizes (a few minutes)
    .venv/bin/python bench/run.py --only storm,latency --systems runstream,floor

Writes bench/results/results.md and results.json; server logs go to bench/results/logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scenarios import FULL, QUICK, SCENARIOS, Bench  # noqa: E402
from bench.servers import BENCH, start_model  # noqa: E402
from bench.workers import raise_fd_limit  # noqa: E402

_SKIP = {"scenario", "system", "events", "seconds", "events_per_s", "cpu_us_per_event", "ok"}


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, {platform.machine()}"


def table(rows: list[dict[str, Any]]) -> str:
    floor = {r["scenario"]: r["events_per_s"] for r in rows if r["system"] == "floor" and r.get("events_per_s")}
    lines = [
        "| scenario | system | events | events/s | vs floor | server CPU µs/event | ok | details |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        ratio = f"{r['events_per_s'] / floor[r['scenario']]:.0%}" if r["scenario"] in floor and r["events_per_s"] else ""
        details = ", ".join(f"{k}={v}" for k, v in r.items() if k not in _SKIP and v not in (None, [], ""))
        lines.append(
            f"| {r['scenario']} | {r['system']} | {r['events']} | {r['events_per_s']} | {ratio} | "
            f"{r['cpu_us_per_event'] if r['cpu_us_per_event'] else ''} | {'yes' if r['ok'] else 'NO'} | {details} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes, a few minutes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--systems", default="runstream,agno,floor", help="comma-separated systems")
    args = parser.parse_args()
    raise_fd_limit()
    results = BENCH / "results"
    logs = results / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="runstream-bench-"))
    wanted = set(args.systems.split(","))
    rows: list[dict[str, Any]] = []
    model = start_model(logs)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        bench = Bench(model, QUICK if args.quick else FULL, scratch, logs)
        for name in args.only.split(","):
            scenario, systems = SCENARIOS[name]
            for system in (s for s in systems if s in wanted):
                print(f"-- {name} on {system}", flush=True)
                try:
                    rows.append(scenario(bench, system))
                except Exception as exc:  # one broken system must not hide the others' figures
                    traceback.print_exc()
                    rows.append({"scenario": name, "system": system, "events": 0, "seconds": 0, "events_per_s": 0,
                                 "cpu_us_per_event": None, "ok": False, "failed": f"{type(exc).__name__}: {exc}"})
                print("   ", json.dumps(rows[-1])[:600], flush=True)
    finally:
        model.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    command = " ".join(["bench/run.py", *sys.argv[1:]])
    header = f"{started}; {machine()}; `{command}`"
    (results / "results.json").write_text(json.dumps({"header": header, "rows": rows}, indent=1))
    (results / "results.md").write_text(f"{header}\n\n{table(rows)}\n")
    print(f"\n{header}\n\n{table(rows)}")


if __name__ == "__main__":
    main()
