"""Benchmarks of the detection-model pipeline against plain-Airflow and plain-PostgreSQL baselines.

Run with ``python -m bench`` (``--help`` lists the sizes). Each benchmark compares the
product's path with a baseline doing the same work on the same rows, table and connection
settings; see :mod:`bench.suite` for the list and how to add one.
"""
