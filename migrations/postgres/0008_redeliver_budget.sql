-- A redelivery renews a delivery's retry budget without forgetting its tries: `attempts` keeps
-- counting every try, and the budget counts from here.
ALTER TABLE webhook_deliveries ADD COLUMN tries_before_redeliver INTEGER NOT NULL DEFAULT 0;
