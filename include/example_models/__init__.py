"""Example detection models: a small AIS vessel-tracking chain.

ais_ingest -> track_quality -> anomaly_score -> alert_router. The inputs are generated
deterministically from the cycle timestamp, so every cycle is reproducible.
"""
