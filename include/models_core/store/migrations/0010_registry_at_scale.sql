-- Indexes for a registry of 1,000 models x 100 versions with months of history, each found by
-- the registry benchmark (bench/registry.py) on a read that scanned far more than it showed.

-- 1. What one model (or one page of models) did over a window: the model's page and the models
-- page (snapshots of their models), `modelreg best` and the quality gates (the cycle evidence
-- view, filtered by model), the trend chart. The indexes led by the cycle read the window of
-- every model and kept one model's rows.
-- The metrics' one carries what those reads aggregate (INCLUDE), so they read the index alone:
-- a page of 50 models' drift reads 8 days of their metrics, 180,000 rows scattered over the
-- table (written a cycle at a time), 50 ms from the heap.
CREATE INDEX detection_model_metrics_model_cycle ON detection_model_metrics (model_id, cycle_started_at)
    INCLUDE (version_id, metric_key, metric_value, is_default);
CREATE INDEX detection_model_task_outcomes_model_cycle ON detection_model_task_outcomes (model_id, cycle_started_at);

-- 2. Tag filters (the models page, `modelreg list --tag`): KEY=VALUE as tags @> {"KEY": "VALUE"}.
-- jsonb_path_ops keeps one entry per key and value, so a team's 5,000 of 100,000 versions are
-- one posting list (3 ms for a page of models, against 34 ms scanning the table; the default
-- jsonb_ops GIN lists every version under the key "team" and took 10 ms). A KEY alone (any
-- value) is not served by it and scans the versions.
CREATE INDEX detection_model_versions_tags ON detection_model_versions USING gin (tags jsonb_path_ops);

-- 3. Alerts are rare: the snapshots' alert counts and the latest cycle's alerts read only the
-- rows that are alerts, not every output row of the window.
CREATE INDEX detection_model_run_outputs_alerts ON detection_model_run_outputs (cycle_started_at, model_id)
    WHERE outputs -> 'alert' = 'true'::jsonb;

-- 4. The models page's "needs attention" filter asks, model by model, whether one has a
-- version in ERROR: a handful of rows, found without reading each model's versions.
CREATE INDEX detection_model_versions_errors ON detection_model_versions (model_id) WHERE status = 'ERROR';
