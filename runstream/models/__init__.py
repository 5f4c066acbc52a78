"""Model providers an ``Agent`` can stream from."""

from runstream.models.base import Model, ToolCall, ToolSpec, Usage
from runstream.models.demo import DemoModel
from runstream.models.openai import OpenAIChat

__all__ = ["DemoModel", "Model", "OpenAIChat", "ToolCall", "ToolSpec", "Usage"]
