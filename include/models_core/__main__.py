"""``python -m models_core``: the same CLI as ``modelreg``."""

from models_core.registry.cli import main

raise SystemExit(main())
