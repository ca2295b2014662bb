-- Each event carries the call as it was when the event happened: the outbox trigger copies the call
-- row into call_snapshots in the transition's own transaction (the call is updated before its
-- event is inserted). A column added to calls must be added here and to the trigger's list too;
-- reading a snapshot selects every column a call has, so a missing one fails loudly.
CREATE TABLE call_snapshots (
    seq             INTEGER PRIMARY KEY,     -- the event_outbox row it belongs to
    id              BLOB NOT NULL,
    team_id         BLOB NOT NULL,
    call_type       TEXT NOT NULL,
    progress        TEXT NOT NULL,
    status          TEXT,
    end_reason      TEXT,
    script_id       BLOB NOT NULL,
    contact_id      BLOB,
    from_number     TEXT,
    to_number       TEXT,
    timezone        TEXT NOT NULL,
    scheduled_time  TEXT NOT NULL,
    latest_time     TEXT,
    due_ms          INTEGER NOT NULL,
    latest_ms       INTEGER,
    calling_window  TEXT,
    retry_policy    TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    metadata        TEXT NOT NULL,
    variables       TEXT NOT NULL,
    result          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    ended_at        TEXT,
    object_id       BLOB,
    lost_attempts   INTEGER NOT NULL
);

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
        updated_at, started_at, ended_at, object_id, lost_attempts)
    SELECT last_insert_rowid(), id, team_id, call_type, progress, status, end_reason, script_id, contact_id,
        from_number, to_number, timezone, scheduled_time, latest_time, due_ms, latest_ms, calling_window,
        retry_policy, attempts, lease_owner, lease_until_ms, metadata, variables, result, created_at,
        updated_at, started_at, ended_at, object_id, lost_attempts
    FROM calls WHERE id = NEW.call_id;
END;
