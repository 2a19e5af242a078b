namespace ControlPlane.Operator.Store;

/// <summary>Versioned migrations of the system of record, in schema controlplane. Append only: never edit a shipped one.</summary>
public static class Migrations
{
    public sealed record Migration(int Version, string Name, string Sql);

    public static readonly IReadOnlyList<Migration> All =
    [
        new(1, "tenants, workspaces, audit_events", """
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
            """),
        new(2, "workspace members and databases, provider keys", """
            ALTER TABLE controlplane.workspaces
                ADD COLUMN members jsonb NOT NULL DEFAULT '[]'::jsonb,
                ADD COLUMN database_name text,
                ADD COLUMN k8s_uid text NOT NULL DEFAULT '';
            -- Bring-your-own provider keys, envelope-encrypted: the value under a per-value data key
            -- (AES-256-GCM), the data key wrapped by the key-encryption key from configuration.
            CREATE TABLE controlplane.provider_keys (
                id           uuid PRIMARY KEY,
                workspace    text NOT NULL,
                provider     text NOT NULL,
                fingerprint  text NOT NULL,
                ciphertext   bytea NOT NULL,
                nonce        bytea NOT NULL,
                tag          bytea NOT NULL,
                wrapped_key  bytea NOT NULL,
                wrap_nonce   bytea NOT NULL,
                wrap_tag     bytea NOT NULL,
                kek_id       text NOT NULL,
                created_at   timestamptz NOT NULL DEFAULT now(),
                validated_at timestamptz NOT NULL DEFAULT now(),
                retired_at   timestamptz,
                expires_at   timestamptz
            );
            CREATE UNIQUE INDEX provider_keys_one_active ON controlplane.provider_keys (workspace, provider) WHERE retired_at IS NULL;
            """),
        new(3, "workspace databases, allocated once", """
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
            """),
        new(4, "exposure publications", """
            -- Every generation of an Exposure that went live (or was taken down), with the JSON Patch of its
            -- spec against the previous live one. In a metadataOnly tenant the patch keeps hashes, never values.
            CREATE TABLE controlplane.exposure_publications (
                id              bigserial PRIMARY KEY,
                exposure_uid    text NOT NULL,
                namespace       text NOT NULL,
                name            text NOT NULL,
                tenant          text NOT NULL,
                generation      bigint NOT NULL,
                action          text NOT NULL CHECK (action IN ('published', 'unpublished')),
                author          text,
                approvers       jsonb NOT NULL,
                published_at    timestamptz,
                recorded_at     timestamptz NOT NULL DEFAULT now(),
                spec_hash       text NOT NULL,
                diff            jsonb NOT NULL,
                values_redacted boolean NOT NULL,
                reason          text NOT NULL,
                UNIQUE (exposure_uid, generation, action)
            );
            CREATE INDEX exposure_publications_name ON controlplane.exposure_publications (namespace, name);
            CREATE FUNCTION controlplane.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'controlplane.% is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$;
            CREATE TRIGGER exposure_publications_no_update_delete BEFORE UPDATE OR DELETE ON controlplane.exposure_publications
                FOR EACH ROW EXECUTE FUNCTION controlplane.append_only();
            CREATE TRIGGER exposure_publications_no_truncate BEFORE TRUNCATE ON controlplane.exposure_publications
                FOR EACH STATEMENT EXECUTE FUNCTION controlplane.append_only();
            """),
        new(5, "backups and restores", """
            -- Each Backup and Restore object is a row, keyed by its correlation id (also in the object's
            -- status), so the trail of a backup survives the object being pruned.
            CREATE TABLE controlplane.backups (
                id              uuid PRIMARY KEY,
                namespace       text NOT NULL,
                name            text NOT NULL,
                k8s_uid         text NOT NULL,
                plan            text NOT NULL,
                tenant          text NOT NULL,
                region          text NOT NULL,
                database_name   text NOT NULL,
                storage         text NOT NULL,
                object_key      text NOT NULL,
                phase           text NOT NULL CHECK (phase IN ('Running', 'Completed', 'Failed', 'Deleted')),
                reason          text,
                size_bytes      bigint,
                sha256          text,
                pg_dump_version text,
                server_version  text,
                started_at      timestamptz NOT NULL DEFAULT now(),
                completed_at    timestamptz,
                deleted_at      timestamptz
            );
            CREATE UNIQUE INDEX backups_k8s_uid ON controlplane.backups (k8s_uid);
            CREATE TABLE controlplane.restores (
                id                uuid PRIMARY KEY,
                namespace         text NOT NULL,
                name              text NOT NULL,
                k8s_uid           text NOT NULL,
                backup_name       text NOT NULL,
                backup_id         uuid,
                target_database   text NOT NULL,
                in_place          boolean NOT NULL,
                replaced_database text,
                phase             text NOT NULL CHECK (phase IN ('Running', 'Completed', 'Failed')),
                reason            text,
                started_at        timestamptz NOT NULL DEFAULT now(),
                completed_at      timestamptz
            );
            CREATE UNIQUE INDEX restores_k8s_uid ON controlplane.restores (k8s_uid);
            """),
        new(6, "deployment events, risk models", """
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
            """),
        new(7, "backups of deleted workspaces", """
            -- A deleted workspace's completed backups outlive their Backup objects: with deletionPolicy
            -- Retain they are kept (retained_at, and why), with Delete their objects are deleted once
            -- delete_after (the deletion plus ControlPlane:Backup:DeleteGrace) has passed.
            ALTER TABLE controlplane.backups
                ADD COLUMN retained_at     timestamptz,
                ADD COLUMN retained_reason text,
                ADD COLUMN delete_after    timestamptz;
            CREATE INDEX backups_delete_after ON controlplane.backups (delete_after)
                WHERE delete_after IS NOT NULL AND deleted_at IS NULL;
            """),
    ];
}
