"""Models used by the integration tests; their behaviour is steered by version params.

Params understood by every model here: ``fail`` (raise), ``n`` (outputs to produce),
``metrics`` (extra metrics to report), ``bad_result`` (return a result with a wrong
version_id).
"""
