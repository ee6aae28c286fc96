"""Registry events: the outbox every change writes, its Airflow Asset events and its webhooks."""
