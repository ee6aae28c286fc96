"""What ``make bench`` and ``make faults`` both run against: throw-away Airflow settings,
databases and Airflow processes (api-server, scheduler, dag-processor) in one process group.

Not part of the product: nothing in ``include/`` imports it.
"""
