-- Script versions: every create or replace stores the definition as a new version; a call keeps
-- the version it was created with and runs that one, so an edit never changes calls already
-- scheduled (unless the replace asks to move them).
CREATE TABLE script_versions (
    id          BLOB PRIMARY KEY,            -- UUIDv7: cursor pages, newest last
    script_id   BLOB NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    team_id     BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (script_id, version)
);
ALTER TABLE scripts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- What exists is version 1 (the id reuses the script's: unique, and as old as the script).
INSERT INTO script_versions (id, script_id, team_id, version, name, definition, created_at)
    SELECT id, id, team_id, 1, name, definition, updated_at FROM scripts;

ALTER TABLE calls ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE call_snapshots ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;

DROP TRIGGER call_events_outbox;
CREATE TRIGGER call_events_outbox AFTER INSERT ON call_events
WHEN ((NEW.progress = 'scheduled' AND NEW.attempt = 0) OR NEW.progress IN ('in_progress', 'ended'))
 AND EXISTS (SELECT 1 FROM calls c WHERE c.id = NEW.call_id AND (
        EXISTS (SELECT 1 FROM automations a WHERE a.team_id = c.team_id AND a.enabled
                AND a.trigger_type IN ('call_completed', 'call_scheduled'))
     OR EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.team_id = c.team_id AND w.enabled)))
BEGIN
    INSERT INTO event_outbox (call_id, progress, at) VALUES (NEW.call_id, NEW.progress, NEW.at);
    INSERT INTO call_snapshots (seq, id, team_id, call_type, progress, status, end_reason, script_id, contact_id,
        from_number, to_number, timezone, scheduled_time, latest_time, due_ms, latest_ms, calling_window,
        retry_policy, attempts, lease_owner, lease_until_ms, metadata, variables, result, created_at,
        updated_at, started_at, ended_at, object_id, lost_attempts, script_version)
    SELECT last_insert_rowid(), id, team_id, call_type, progress, status, end_reason, script_id, contact_id,
        from_number, to_number, timezone, scheduled_time, latest_time, due_ms, latest_ms, calling_window,
        retry_policy, attempts, lease_owner, lease_until_ms, metadata, variables, result, created_at,
        updated_at, started_at, ended_at, object_id, lost_attempts, script_version
    FROM calls WHERE id = NEW.call_id;
END;
