-- Phone numbers (a team's caller ids), calls (the dispatch queue), their attempts and timeline.
-- Due and lease times are unix milliseconds so that the dispatcher compares integers on both backends.

CREATE TABLE phone_numbers (
    id                BLOB PRIMARY KEY,
    team_id           BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    number            TEXT NOT NULL,
    inbound_script_id BLOB REFERENCES scripts(id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    UNIQUE (team_id, number)
);

CREATE TABLE calls (
    id              BLOB PRIMARY KEY,
    team_id         BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    call_type       TEXT NOT NULL,           -- outbound | inbound | web
    progress        TEXT NOT NULL,
    status          TEXT,
    end_reason      TEXT,
    script_id       BLOB NOT NULL REFERENCES scripts(id),
    contact_id      BLOB REFERENCES contacts(id) ON DELETE SET NULL,
    from_number     TEXT,
    to_number       TEXT,
    timezone        TEXT NOT NULL,           -- the callee's, for calling windows
    scheduled_time  TEXT NOT NULL,
    latest_time     TEXT,
    due_ms          INTEGER NOT NULL,        -- when the dispatcher may take it next
    latest_ms       INTEGER,                 -- after this it expires instead of ringing late
    calling_window  TEXT,                    -- JSON override of the team's window
    retry_policy    TEXT NOT NULL,           -- JSON
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    metadata        TEXT NOT NULL DEFAULT '{}',
    variables       TEXT NOT NULL DEFAULT '{}',
    result          TEXT,                    -- JSON: transcript, analysis, duration, recording
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    ended_at        TEXT
);
CREATE INDEX calls_due ON calls(progress, due_ms);
CREATE INDEX calls_team ON calls(team_id, id);
CREATE INDEX calls_active ON calls(team_id, progress);

CREATE TABLE call_events (
    id       BLOB PRIMARY KEY,
    call_id  BLOB NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    at       TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    progress TEXT NOT NULL,
    status   TEXT,
    detail   TEXT
);
CREATE INDEX call_events_call ON call_events(call_id, id);
