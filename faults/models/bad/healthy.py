"""Models that do nothing wrong: their rows must be complete whatever their neighbours do."""

from __future__ import annotations

from faults.models.steady.paced import SteadyModel


class SteadyRoot(SteadyModel):
    model_id = "steady_root"


class SteadyLeaf(SteadyModel):
    model_id = "steady_leaf"
    depends_on = ["steady_root"]


class CycleA(SteadyModel):
    """Healthy, until plain SQL makes cycle_a and cycle_b depend on each other."""

    model_id = "cycle_a"


class CycleB(SteadyModel):
    model_id = "cycle_b"


class Orphan(SteadyModel):
    """Healthy code; its registry row depends on a model nobody declares."""

    model_id = "orphan"
