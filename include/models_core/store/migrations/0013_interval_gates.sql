-- Gates that know how sure they are (issue 25). gate_kind 'interval': the evaluation gates
-- (min_agreement, max_duration_ratio, max_score_difference) pass when the bound of their 95%
-- interval clears the threshold; 'point': when the estimate does. Intervals are the default,
-- for the models that had gates before as well: a point figure over a handful of inputs is
-- not evidence, and a model keeps point gates only by saying so (modelreg gates --gate-kind point).
ALTER TABLE detection_model_quality_gates
    ADD COLUMN max_score_difference double precision CHECK (max_score_difference >= 0),
    ADD COLUMN gate_kind text NOT NULL DEFAULT 'interval' CHECK (gate_kind IN ('interval', 'point'));
