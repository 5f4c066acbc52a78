"""``python -m runstream``: the command line."""

from runstream.cli import main

__all__: list[str] = []

raise SystemExit(main())
