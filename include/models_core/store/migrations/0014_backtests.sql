-- Backtests (issue 25): a version run over past cycles, fed the upstream PRIMARY results stored
-- for them and compared with its model's PRIMARY of each cycle. Its outputs go to
-- detection_model_run_outputs with role BACKTEST, in the partitions of the cycles they belong
-- to; its metrics and evaluation go here, apart from detection_model_metrics, so that no read
-- of live evidence (the gates, drift, snapshots, best, the charts) can count them. One row set
-- per (version, cycle): a re-run replaces it. A model's gates may ask for backtest evidence:
-- min_backtest_cycles backtested cycles, on which its evaluation gates must pass as well.
CREATE TABLE detection_model_backtest_metrics (
    cycle_started_at  timestamptz NOT NULL,
    model_id          varchar(64) NOT NULL,
    version_id        bigint NOT NULL,
    metric_key        varchar(64) NOT NULL,
    metric_value      double precision NOT NULL,
    is_default        boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, cycle_started_at, metric_key)
);

ALTER TABLE detection_model_quality_gates
    ADD COLUMN min_backtest_cycles integer CHECK (min_backtest_cycles >= 0);
