"""Agents: model-driven steps that may call tools."""

from runstream.agents.agent import Agent
from runstream.agents.tools import Tool, ToolArgumentsError, tool

__all__ = ["Agent", "Tool", "ToolArgumentsError", "tool"]
