"""The demo that ships in the package: ``runstream demo`` serves it, no repository needed."""

from runstream.demo.content import content_creation_workflow, demo_model, search_notes

__all__ = ["DEMO_DATABASE_URL", "content_creation_workflow", "demo_model", "search_notes"]

DEMO_DATABASE_URL = "sqlite:///data/demo.db"
"""Where ``runstream demo`` keeps its runs unless told otherwise: its own file, not another app's."""
