-- A team's default calling window (JSON: start, end, days), used by calls that have none of their own.
ALTER TABLE teams ADD COLUMN calling_window JSONB;
-- The object a call was created with (create-phone-call's `object`), linked to the call's contact too.
ALTER TABLE calls ADD COLUMN object_id UUID REFERENCES objects(id) ON DELETE SET NULL;
CREATE INDEX calls_object ON calls(object_id) WHERE object_id IS NOT NULL;
-- The dispatcher's two queries, each walking an index in order and stopping at its LIMIT: due
-- calls by (due_ms, id), instead of sorting every waiting call on each pass (a burst leaves
-- thousands queued), and lapsed leases by expiry. They replace calls_due (progress, due_ms).
DROP INDEX calls_due;
CREATE INDEX calls_waiting ON calls(due_ms, id) WHERE progress IN ('scheduled', 'queued');
CREATE INDEX calls_leased ON calls(lease_until_ms) WHERE lease_until_ms IS NOT NULL;
