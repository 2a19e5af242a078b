-- name: audit api: workspaces of audit rows, per-tenant chains
-- The workspace a row is served in (audit.controlplane.io, docs/audit-api.md): a Workspace's own rows,
-- or the namespace of a namespaced object ("namespace/name"); null for platform rows. Generated, so
-- existing rows get it without an UPDATE (the table refuses those).
ALTER TABLE controlplane.audit_events
    ADD COLUMN workspace text GENERATED ALWAYS AS (
        CASE WHEN kind = 'Workspace' THEN object_name
             WHEN strpos(object_name, '/') > 0 THEN split_part(object_name, '/', 1) END) STORED,
    -- The tenant chain (hash = sha256(tenant_prev_hash || the same canonical row as the global chain)),
    -- set in the append transaction; rows appended before this migration are on the global chain only.
    ADD COLUMN chain_tenant text,
    ADD COLUMN tenant_seq bigint,
    ADD COLUMN tenant_prev_hash text,
    ADD COLUMN tenant_hash text;
-- What a namespace serves (its workspace, its current owner's rows) in id order: the first page reads 500 entries of
-- this index, where a (workspace, id) index left the planner guessing the owner filter and sorting the whole workspace.
CREATE INDEX audit_events_workspace ON controlplane.audit_events (workspace, (COALESCE(chain_tenant, tenant)), id);
CREATE UNIQUE INDEX audit_events_tenant_chain ON controlplane.audit_events (chain_tenant, tenant_seq) WHERE chain_tenant IS NOT NULL;
ALTER TABLE controlplane.deployment_events
    ADD COLUMN tenant_seq bigint,
    ADD COLUMN tenant_prev_hash text,
    ADD COLUMN tenant_hash text;
CREATE INDEX deployment_events_namespace ON controlplane.deployment_events (namespace, tenant, id);
CREATE UNIQUE INDEX deployment_events_tenant_chain ON controlplane.deployment_events (tenant, tenant_seq) WHERE tenant_seq IS NOT NULL;
