-- name: tenants, workspaces, audit_events
CREATE TABLE controlplane.tenants (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    region        text NOT NULL,
    data_mode     text NOT NULL,
    display_name  text,
    suspended     boolean NOT NULL DEFAULT false,
    spec          jsonb NOT NULL,
    spec_hash     text NOT NULL,
    k8s_uid       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE TABLE controlplane.workspaces (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    tenant_id          uuid REFERENCES controlplane.tenants(id),
    tenant_name        text NOT NULL,
    region             text NOT NULL,
    environment        text NOT NULL,
    data_mode          text NOT NULL,
    provisioning_state text NOT NULL DEFAULT 'creating',
    spec_hash          text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE TABLE controlplane.audit_events (
    id           bigserial PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    kind         text NOT NULL,
    object_name  text NOT NULL,
    tenant       text,
    severity     text NOT NULL DEFAULT 'info',
    details      jsonb NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL UNIQUE
);
CREATE INDEX audit_events_object ON controlplane.audit_events (kind, object_name);
-- Append-only: the audit trail refuses UPDATE, DELETE and TRUNCATE, whoever asks.
CREATE FUNCTION controlplane.audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'controlplane.audit_events is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON controlplane.audit_events
    FOR EACH ROW EXECUTE FUNCTION controlplane.audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON controlplane.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION controlplane.audit_events_append_only();
