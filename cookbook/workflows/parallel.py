"""Parallel: search two sources at once, then merge what they found.

    python cookbook/workflows/parallel.py

The two searches' events interleave; each carries its ``step_name``,
``step_id`` and ``parent_step_id`` (the Parallel's id) so a client can tell
them apart. The Parallel's output is ``{step name: content}``.
"""

import asyncio

from runstream import Agent, DemoModel, Parallel, Step, StepInput, Workflow


async def search_news(step_input: StepInput) -> str:
    await asyncio.sleep(0.2)  # stands in for a slow API call
    return f"3 news stories about {step_input.input}"


def search_papers(step_input: StepInput) -> str:
    return f"5 papers about {step_input.input}"  # sync code runs in a worker thread


def merge(step_input: StepInput) -> str:
    found = step_input.get_step_content("Search")
    return f"Merged: {found['search_news']}; {found['search_papers']}; analyst: {found['Analyst'][:40]}..."


EXAMPLE = "tide pools"

workflow = Workflow(
    id="parallel-research",
    name="Parallel Research",
    description="Search news, papers and an analyst at once, then merge.",
    steps=[
        Parallel(search_news, search_papers, Agent(name="Analyst", model=DemoModel(tokens=20)), name="Search"),
        Step(name="Merge", executor=merge),
    ],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
