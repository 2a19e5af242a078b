-- name: application scope versions
-- Every scope version of an Application that took effect: the first and every widening once CAB
-- approved it (its approvers), a narrowing at once (no approvers), each with its diff against the
-- version before and the blast radius (workspaces and rings newly in scope). Append-only; a version
-- is recorded once per Application (its UID: one recreated under the same name starts again at 1).
CREATE TABLE controlplane.application_scope_versions (
    id              bigserial PRIMARY KEY,
    application_uid text NOT NULL,
    namespace       text NOT NULL,
    name            text NOT NULL,
    tenant          text NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    generation      bigint NOT NULL,
    scope           jsonb NOT NULL,
    scope_hash      text NOT NULL,
    diff            jsonb NOT NULL,
    blast_radius    jsonb NOT NULL,
    approvers       jsonb NOT NULL,
    reason          text NOT NULL,
    approved_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_uid, version)
);
CREATE INDEX application_scope_versions_name ON controlplane.application_scope_versions (namespace, name);
CREATE TRIGGER application_scope_versions_no_update_delete BEFORE UPDATE OR DELETE ON controlplane.application_scope_versions
    FOR EACH ROW EXECUTE FUNCTION controlplane.append_only();
CREATE TRIGGER application_scope_versions_no_truncate BEFORE TRUNCATE ON controlplane.application_scope_versions
    FOR EACH STATEMENT EXECUTE FUNCTION controlplane.append_only();
