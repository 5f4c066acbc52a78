"""The ``runstream`` command line (``runstream ...`` or ``python -m runstream ...``)."""

from runstream.cli.main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
