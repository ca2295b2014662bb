-- A team may keep recordings and transcripts for a limited time (days after the call ended; null:
-- for good). A sweep deletes what is older and marks the call, so it is not looked at again.
ALTER TABLE teams ADD COLUMN recording_retention_days INTEGER;
ALTER TABLE teams ADD COLUMN transcript_retention_days INTEGER;
ALTER TABLE calls ADD COLUMN recording_purged BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE calls ADD COLUMN transcript_purged BOOLEAN NOT NULL DEFAULT FALSE;
-- The outbox trigger copies `calls.*` into a snapshot: the same columns, appended in the same order.
ALTER TABLE call_snapshots ADD COLUMN recording_purged BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE call_snapshots ADD COLUMN transcript_purged BOOLEAN NOT NULL DEFAULT FALSE;
