-- name: workspace members and databases, provider keys
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
