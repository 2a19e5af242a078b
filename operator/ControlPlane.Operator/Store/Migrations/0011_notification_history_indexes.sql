-- name: notification delivery history: per-channel and retention indexes
-- A channel's history, newest first (the audit API's notificationdeliveries), without walking other channels' rows.
CREATE INDEX notification_deliveries_history ON controlplane.notification_deliveries (channel_uid, id);
-- Delivered rows past the retention window, oldest first (the leader prunes them in bounded batches).
CREATE INDEX notification_deliveries_delivered_at ON controlplane.notification_deliveries (delivered_at) WHERE state = 'delivered';
