"""The Airflow pool that bounds SHADOW/CHALLENGER tasks, made where Airflow is prepared.

Airflow never schedules a task whose pool does not exist: without this pool every shadow
task would wait forever and hold its cycle open. ``modelreg migrate`` (and so ``make run``)
creates it when it is missing, and says so, or says how to create it when it cannot.
"""

from __future__ import annotations

import logging

from models_core.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = "SHADOW/CHALLENGER model tasks of detection_models"


def ensure_shadow_pool(settings: Settings) -> tuple[bool, str]:
    """Create the shadow pool if Airflow has none of that name; (ok, what happened).

    An existing pool keeps its slots (an operator may have resized it). ``ok`` is False,
    with the command to run, when Airflow's metadata database cannot be reached from here.
    """
    name, slots = settings.shadow_pool, settings.shadow_pool_slots
    try:
        from airflow.models.pool import Pool

        existing = Pool.get_pool(name)
        if existing is not None:
            return True, f"pool {name} exists ({existing.slots} slots)"
        Pool.create_or_update_pool(name, slots, DESCRIPTION, include_deferred=False)
    except Exception as exc:  # no metadata database here (a worker-only machine, a typo in its URL)
        detail = " ".join(str(exc).split())[:200]
        return False, (
            f"could not create the Airflow pool {name} ({type(exc).__name__}: {detail}); SHADOW/CHALLENGER "
            f'tasks wait until it exists: run `airflow pools set {name} {slots} "{DESCRIPTION}"`'
        )
    log.info("created the Airflow pool %s with %d slots", name, slots)
    return True, f"created pool {name} ({slots} slots)"
