-- name: backups and restores
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
