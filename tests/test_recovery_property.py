"""Crash recovery at random moments: a run killed after any number of events, any number of
times, still ends once, with every event a client saw kept, and no completed step run again."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apps.scenario import check_crossing, cross_crashes

ESSAY = "essay on facts about tides with left(facts about tides) and right(facts about tides)"


@pytest.mark.timeout(240)  # three examples, each starting and killing up to three real servers
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(kills=st.lists(st.integers(min_value=1, max_value=14), min_size=1, max_size=2))
def test_any_sequence_of_kills_loses_nothing_and_repeats_no_completed_step(kills: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        c = asyncio.run(cross_crashes(Path(folder), "essay", kill_after=tuple(kills), pace=0.02))
    check_crossing(c)
    assert c.record.status == "completed" and c.log[-1]["event"] == "WorkflowCompleted"
    assert c.record.output == c.log[-1]["content"] == ESSAY
