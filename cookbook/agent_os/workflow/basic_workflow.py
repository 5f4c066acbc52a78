"""The demo server: a content-creation workflow, and every cookbook workflow, on port 7777.

    python cookbook/agent_os/workflow/basic_workflow.py

Two agent steps (research, then content planning) stream their answers token
by token; the Research Agent first calls its ``search_notes`` tool. Without
``OPENAI_API_KEY`` they run on the offline ``DemoModel`` (about 15 seconds and
some 180 events a run); with it, on ``OpenAIChat``. The content-creation
workflow ships in the package (``runstream.demo``, what ``runstream demo``
serves); this file adds the step-kind examples of ``cookbook/workflows/``.

Runs are kept in ``data/demo.db`` at the repository root unless
``RUNSTREAM_DATABASE_URL`` says otherwise. It listens on 127.0.0.1:7777, or on
``RUNSTREAM_HOST``/``HOST`` and ``RUNSTREAM_PORT``/``PORT``.
"""

import os
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "data"

sys.path.insert(0, str(DATA.parent))  # the repository root: runstream itself and the step-kind examples below
try:
    from runstream import Server
    from runstream.demo import content_creation_workflow
except ModuleNotFoundError as missing:  # a Python without runstream's dependencies
    raise SystemExit(
        f"error: {missing.name} is not installed in this Python ({sys.executable}).\n"
        "Install runstream first, then start the demo with the venv's Python:\n"
        "  python3 -m venv .venv && .venv/bin/pip install -e . && "
        ".venv/bin/python cookbook/agent_os/workflow/basic_workflow.py"
    ) from None
from cookbook.workflows import (  # noqa: E402
    condition,
    early_stop,
    loop,
    parallel,
    router,
    session_state,
    steps_group,
    structured_io,
)
from cookbook.hitl import (  # noqa: E402
    confirmation,
    error_pause,
    iteration_review,
    output_review,
    pause_decorator,
    route_selection,
    router_review,
    tool_confirmation,
    user_input,
)

server = Server(
    workflows=[
        content_creation_workflow,
        *(m.workflow for m in (parallel, condition, loop, router, steps_group, early_stop, session_state, structured_io)),
        *(m.workflow for m in (confirmation, user_input, route_selection, output_review, error_pause,
                               iteration_review, pause_decorator, tool_confirmation, router_review)),
    ],
    database_url=os.environ.get("RUNSTREAM_DATABASE_URL") or f"sqlite:///{DATA / 'demo.db'}",
)
app = server.app

if __name__ == "__main__":
    server.serve()
