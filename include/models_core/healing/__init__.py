"""Self-healing versions: after each cycle, a version that keeps failing goes to ERROR, a
PRIMARY that breaks its model's degradation rules is rolled back (or an alert is sent), and
people are told through an Airflow notifier.
"""
