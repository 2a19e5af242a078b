-- name: deployment events, risk models
-- The DeploymentIntent event store: every phase change, ring step, drift finding and plane
-- error, append-only and hash-chained (hash = sha256(prev_hash || canonical row)), with the
-- correlation id (the idempotency key sent to the execution plane), actor and reason.
CREATE TABLE controlplane.deployment_events (
    id              bigserial PRIMARY KEY,
    occurred_at     timestamptz NOT NULL,
    intent_uid      text NOT NULL,
    namespace       text NOT NULL,
    name            text NOT NULL,
    tenant          text NOT NULL,
    correlation_id  text NOT NULL,
    generation      bigint NOT NULL,
    event_type      text NOT NULL,
    from_phase      text,
    to_phase        text,
    ring            text,
    actor           text NOT NULL,
    reason          text NOT NULL,
    details         jsonb NOT NULL,
    dedupe_key      text NOT NULL UNIQUE,
    prev_hash       text NOT NULL,
    hash            text NOT NULL UNIQUE
);
CREATE INDEX deployment_events_intent ON controlplane.deployment_events (intent_uid, id);
CREATE TRIGGER deployment_events_no_update_delete BEFORE UPDATE OR DELETE ON controlplane.deployment_events
    FOR EACH ROW EXECUTE FUNCTION controlplane.append_only();
CREATE TRIGGER deployment_events_no_truncate BEFORE TRUNCATE ON controlplane.deployment_events
    FOR EACH STATEMENT EXECUTE FUNCTION controlplane.append_only();
-- Every risk model version ever used: a version is never reused for other weights.
CREATE TABLE controlplane.risk_models (
    version      text PRIMARY KEY,
    weights      jsonb NOT NULL,
    threshold    double precision NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
