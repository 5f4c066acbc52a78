"""Agents: model-driven steps."""

from runstream.agents.agent import Agent

__all__ = ["Agent"]
