"""Models used by the integration tests; their behaviour is steered by version params.

Params understood by every model here: ``fail`` (raise), ``fail_at`` (raise in the cycles
whose ISO timestamps it lists), ``fail_oddly`` (raise with a message holding a NUL,
``nul``, or a lone surrogate, ``surrogate``, both over 500 characters, or one whose
``__str__`` raises, ``unreadable``), ``n`` (outputs to produce),
``metrics`` (extra metrics to report), ``bad_result`` (return a result with a wrong
version_id), ``nul`` (an output holding a NUL character), ``sleep`` (seconds to sleep in
run()), ``hold_on_conn`` (keep a temp table on ctx.conn while reading ctx.shared),
``close_conn`` (close ctx.conn before returning), ``archive_self`` (archive its own version
mid-run), ``promote_instead`` (promote that version of its model mid-run),
``kill_framework_conn_once`` (a file path: on the first run, terminate the framework's
connection of this task, as a restarting server would).
"""
