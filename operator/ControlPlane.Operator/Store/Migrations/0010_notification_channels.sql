-- name: notification channels: cursors and delivery history
-- One row per NotificationChannel (by UID: a channel deleted and made again under its name starts afresh):
-- where it has read the two chained tables up to (rows are committed in id order under their chain's advisory
-- lock, so a cursor never skips a row), its failure streak and the generation it was auto-disabled at.
CREATE TABLE controlplane.notification_channels (
    channel_uid          text PRIMARY KEY,
    channel_key          text NOT NULL,
    audit_cursor         bigint NOT NULL,
    deployment_cursor    bigint NOT NULL,
    consecutive_failures int NOT NULL DEFAULT 0,
    disabled_generation  bigint,
    delivered_count      bigint NOT NULL DEFAULT 0,
    failed_count         bigint NOT NULL DEFAULT 0,
    last_delivered_at    timestamptz,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now()
);
-- The delivery history: one row per (channel, event id), the idempotency key receivers de-duplicate by.
-- Delivered in id order per channel; a row is retried (state failed, next_attempt_at) until delivered.
CREATE TABLE controlplane.notification_deliveries (
    id               bigserial PRIMARY KEY,
    channel_uid      text NOT NULL REFERENCES controlplane.notification_channels (channel_uid) ON DELETE CASCADE,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    committed_at     timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         int NOT NULL DEFAULT 0,
    last_status_code int,
    last_error       text,
    last_attempt_at  timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (channel_uid, event_id)
);
CREATE INDEX notification_deliveries_undelivered ON controlplane.notification_deliveries (channel_uid, id) WHERE state <> 'delivered';
