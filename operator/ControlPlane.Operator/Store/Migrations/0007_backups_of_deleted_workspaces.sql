-- name: backups of deleted workspaces
-- A deleted workspace's completed backups outlive their Backup objects: with deletionPolicy
-- Retain they are kept (retained_at, and why), with Delete their objects are deleted once
-- delete_after (the deletion plus ControlPlane:Backup:DeleteGrace) has passed.
ALTER TABLE controlplane.backups
    ADD COLUMN retained_at     timestamptz,
    ADD COLUMN retained_reason text,
    ADD COLUMN delete_after    timestamptz;
CREATE INDEX backups_delete_after ON controlplane.backups (delete_after)
    WHERE delete_after IS NOT NULL AND deleted_at IS NULL;
