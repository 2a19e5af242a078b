-- name: exposure publications
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
