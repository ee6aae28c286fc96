"""``make faults``: inject faults into real Airflow processes and a real PostgreSQL, count the damage.

Each fault (one module here) sets up its own databases and processes, injects its fault
many times at seeded random moments, lets the product recover, then checks the outcome
independently, against the registry database and Airflow's metadata. ``python -m faults``
prints one table row per fault and exits 1 unless every fault's outcome is right.
"""
