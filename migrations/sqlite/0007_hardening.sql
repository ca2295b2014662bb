-- Poison guards: how many times an execution was claimed without committing a step, and how many
-- attempts of a call ended with its worker lost (crashed, killed). Past a limit they stop.
ALTER TABLE executions ADD COLUMN pickups INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN lost_attempts INTEGER NOT NULL DEFAULT 0;

-- A hook idempotency key remembers the body it came with: another body under the same key is a 409.
ALTER TABLE hook_receipts ADD COLUMN body_hash BLOB;

-- Signed hooks made before Standard Webhooks signatures keep the body-only HMAC they were made with
-- (new ones default to the Standard Webhooks scheme).
UPDATE automations
   SET definition = json_set(definition, '$.trigger.signature', 'body')
 WHERE json_extract(definition, '$.trigger.type') = 'webhook'
   AND json_extract(definition, '$.trigger.signed') = 1
   AND json_extract(definition, '$.trigger.signature') IS NULL;
