-- name: workspace databases, allocated once
-- A workspace database's name (and its role's) is allocated once, recorded here, and read back:
-- never derived again from the workspace name, so two workspaces can never share one. A
-- retained database keeps its name and its tenant; only that tenant may take it back.
CREATE TABLE controlplane.workspace_databases (
    id             uuid PRIMARY KEY,
    region         text NOT NULL,
    name           text NOT NULL,
    workspace      text NOT NULL,
    workspace_uid  text NOT NULL DEFAULT '',
    tenant         text NOT NULL,
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retained', 'dropped')),
    provisioned    boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    retained_at    timestamptz,
    dropped_at     timestamptz
);
CREATE UNIQUE INDEX workspace_databases_name ON controlplane.workspace_databases (region, name) WHERE state <> 'dropped';
CREATE UNIQUE INDEX workspace_databases_one_active ON controlplane.workspace_databases (workspace) WHERE state = 'active';
-- Backfill: what earlier versions made. A deleted workspace's database counts as retained unless
-- its deletion recorded that it was dropped; on a shared name the first workspace keeps it.
INSERT INTO controlplane.workspace_databases (id, region, name, workspace, workspace_uid, tenant, state, provisioned, created_at, retained_at)
SELECT pg_catalog.gen_random_uuid(), w.region, w.database_name, w.name, w.k8s_uid, w.tenant_name,
       CASE WHEN w.deleted_at IS NULL THEN 'active' ELSE 'retained' END, true, w.created_at, w.deleted_at
FROM controlplane.workspaces w
WHERE w.database_name IS NOT NULL
  AND (w.deleted_at IS NULL OR NOT EXISTS (
      SELECT 1 FROM controlplane.audit_events a
      WHERE a.kind = 'Workspace' AND a.object_name = w.name AND a.action = 'workspace.deleted'
        AND a.occurred_at >= w.deleted_at - interval '1 minute' AND (a.details->>'databaseDeleted')::boolean))
ORDER BY w.deleted_at NULLS FIRST, w.created_at
ON CONFLICT DO NOTHING;
