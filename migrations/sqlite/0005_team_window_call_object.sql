-- A team's default calling window (JSON: start, end, days), used by calls that have none of their own.
ALTER TABLE teams ADD COLUMN calling_window TEXT;
-- The object a call was created with (create-phone-call's `object`), linked to the call's contact too.
ALTER TABLE calls ADD COLUMN object_id BLOB REFERENCES objects(id) ON DELETE SET NULL;
CREATE INDEX calls_object ON calls(object_id) WHERE object_id IS NOT NULL;
