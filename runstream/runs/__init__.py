"""Runs in the background: numbering, logging, publishing, following, cancelling."""

from runstream.runs.appender import Appender
from runstream.runs.follow import follow, follow_batches
from runstream.runs.manager import RunManager

__all__ = ["Appender", "RunManager", "follow", "follow_batches"]
