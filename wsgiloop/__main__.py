"""``python -m wsgiloop``: the same as the ``wsgiloop`` command."""

from .cli import main

raise SystemExit(main())
