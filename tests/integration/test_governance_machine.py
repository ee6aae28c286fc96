"""Issue 23: the registry's governance under random steps by several actors (a stateful property test).

The machine (harness/governance_machine.py) drives the registry through its public API with
people, a service account and the self-healing review, and checks after every step: one
ACTIVE PRIMARY per model, every entry into PRIMARY on a basis that holds (gates, approvals by
enough other people, a restore, or a permitted, reasoned force), ``primary_at`` equal to what
was seen, one audit row per change by its actor. A fixed budget here; ``make faults`` runs
many more examples (the governance storm).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from harness.governance_machine import GovernanceMachine


def test_governance_holds_under_random_steps_by_several_actors(migrated):  # noqa: ARG001 - a migrated registry
    GovernanceMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    GovernanceMachine.TestCase().runTest()
