-- What guards a model: its quality gates, stage checks, approval setting and self-healing
-- policy. Each table is audited row by row (0004-0006); a model without a row has the defaults.

-- name: upsert_gates
INSERT INTO detection_model_quality_gates
    (model_id, min_cycles, max_failure_rate, min_agreement, max_duration_ratio, max_score_difference,
     metric_thresholds, gate_kind, min_backtest_cycles)
VALUES (%(model_id)s, %(min_cycles)s, %(max_failure_rate)s, %(min_agreement)s, %(max_duration_ratio)s,
        %(max_score_difference)s, %(metric_thresholds)s::jsonb, %(gate_kind)s, %(min_backtest_cycles)s)
ON CONFLICT (model_id) DO UPDATE SET
    min_cycles = EXCLUDED.min_cycles, max_failure_rate = EXCLUDED.max_failure_rate,
    min_agreement = EXCLUDED.min_agreement, max_duration_ratio = EXCLUDED.max_duration_ratio,
    max_score_difference = EXCLUDED.max_score_difference, metric_thresholds = EXCLUDED.metric_thresholds,
    gate_kind = EXCLUDED.gate_kind, min_backtest_cycles = EXCLUDED.min_backtest_cycles, updated_at = now();

-- name: stage_checks
SELECT required_tags, require_description FROM detection_model_stage_checks WHERE model_id = %(model_id)s;

-- name: upsert_stage_checks
INSERT INTO detection_model_stage_checks (model_id, required_tags, require_description)
VALUES (%(model_id)s, %(required_tags)s, %(require_description)s)
ON CONFLICT (model_id) DO UPDATE SET
    required_tags = EXCLUDED.required_tags, require_description = EXCLUDED.require_description,
    updated_at = now();

-- name: approval_setting
SELECT required, approvers, min_approvals FROM detection_model_approval_settings WHERE model_id = %(model_id)s;

-- name: upsert_approval_setting
INSERT INTO detection_model_approval_settings (model_id, required, approvers, min_approvals)
VALUES (%(model_id)s, %(required)s, %(approvers)s, %(min_approvals)s)
ON CONFLICT (model_id) DO UPDATE SET
    required = EXCLUDED.required, approvers = EXCLUDED.approvers, min_approvals = EXCLUDED.min_approvals,
    updated_at = now();

-- name: healing_policies
-- Every model's policy (%(model_id)s NULL), or one model's.
SELECT model_id, error_after_failures, on_primary_error, max_failure_rate, metric_thresholds, min_cycles,
       window_hours, cooldown_minutes
FROM detection_model_healing_policies
WHERE %(model_id)s::text IS NULL OR model_id = %(model_id)s
ORDER BY model_id;

-- name: upsert_healing_policy
INSERT INTO detection_model_healing_policies
    (model_id, error_after_failures, on_primary_error, max_failure_rate, metric_thresholds, min_cycles,
     window_hours, cooldown_minutes)
VALUES (%(model_id)s, %(error_after_failures)s, %(on_primary_error)s, %(max_failure_rate)s,
        %(metric_thresholds)s::jsonb, %(min_cycles)s, %(window_hours)s, %(cooldown_minutes)s)
ON CONFLICT (model_id) DO UPDATE SET
    error_after_failures = EXCLUDED.error_after_failures, on_primary_error = EXCLUDED.on_primary_error,
    max_failure_rate = EXCLUDED.max_failure_rate, metric_thresholds = EXCLUDED.metric_thresholds,
    min_cycles = EXCLUDED.min_cycles, window_hours = EXCLUDED.window_hours,
    cooldown_minutes = EXCLUDED.cooldown_minutes, updated_at = now();
