"""The faults by name, in the order they run.

To add one: write ``faults/<name>.py`` with ``NAME``, ``add_arguments(parser)`` for its trial
counts and ``run(suite, args, rng, report)``, and list it here. A fault fills in its
:class:`~faults.report.FaultReport`, including ``passed``; raising means the harness broke.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FAULTS: dict[str, str] = {
    "kill_persist": "faults.kill_persist",
    "db_restart": "faults.db_restart",
    "parse_outage": "faults.parse_outage",
    "hung_shadow": "faults.hung_shadow",
    "lifecycle_storm": "faults.lifecycle_storm",
    "governance_storm": "faults.governance_storm",
    "outbox": "faults.outbox",
    "healing_race": "faults.healing_race",
    "bad_inputs": "faults.bad_inputs",
    "hostile_backends": "faults.hostile_backends",
    "worker_loss": "faults.worker_loss",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(FAULTS[name])
