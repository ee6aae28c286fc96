"""Inference backends the models call: their catalog, the health DAG that probes them (EMA
latency baseline, load class, UP/DOWN), what a model task checks before it runs, and the
shadow pool sized to the busiest backend.
"""
