"""``python -m models_core``: the same CLI as ``modelreg``."""
from models_core.cli import main

raise SystemExit(main())
