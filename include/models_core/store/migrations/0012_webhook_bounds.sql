-- Webhooks name only WEBHOOK_SECRET_* variables for their secret and carry no credentials in
-- their URL, whichever door writes them (models_core.events.webhooks holds the same rules and
-- the sender checks older rows again before each POST). NOT VALID: a row written before this
-- migration stays, and the sender refuses to sign with it, saying why, until it is re-added.
ALTER TABLE detection_model_webhooks
    ADD CONSTRAINT detection_model_webhooks_secret_env_namespace
        CHECK (secret_env ~ '^WEBHOOK_SECRET_[A-Z0-9_]+$') NOT VALID,
    ADD CONSTRAINT detection_model_webhooks_url_without_credentials
        CHECK (url !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@') NOT VALID;
