-- Phone numbers (a team's caller ids), calls (the dispatch queue), their attempts and timeline.
-- Due and lease times are unix milliseconds so that the dispatcher compares integers on both backends.

CREATE TABLE phone_numbers (
    id                UUID PRIMARY KEY,
    team_id           UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    number            TEXT NOT NULL,
    inbound_script_id UUID REFERENCES scripts(id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, number)
);

CREATE TABLE calls (
    id              UUID PRIMARY KEY,
    team_id         UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    call_type       TEXT NOT NULL,           -- outbound | inbound | web
    progress        TEXT NOT NULL,
    status          TEXT,
    end_reason      TEXT,
    script_id       UUID NOT NULL REFERENCES scripts(id),
    contact_id      UUID REFERENCES contacts(id) ON DELETE SET NULL,
    from_number     TEXT,
    to_number       TEXT,
    timezone        TEXT NOT NULL,           -- the callee's, for calling windows
    scheduled_time  TIMESTAMPTZ NOT NULL,
    latest_time     TIMESTAMPTZ,
    due_ms          BIGINT NOT NULL,        -- when the dispatcher may take it next
    latest_ms       BIGINT,                 -- after this it expires instead of ringing late
    calling_window  JSONB,                    -- JSON override of the team's window
    retry_policy    JSONB NOT NULL,           -- JSON
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    metadata        JSONB NOT NULL DEFAULT '{}',
    variables       JSONB NOT NULL DEFAULT '{}',
    result          JSONB,                    -- JSON: transcript, analysis, duration, recording
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ
);
CREATE INDEX calls_due ON calls(progress, due_ms);
CREATE INDEX calls_team ON calls(team_id, id);
CREATE INDEX calls_active ON calls(team_id, progress);

CREATE TABLE call_events (
    id       UUID PRIMARY KEY,
    call_id  UUID NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    at       TIMESTAMPTZ NOT NULL,
    attempt  INTEGER NOT NULL,
    progress TEXT NOT NULL,
    status   TEXT,
    detail   JSONB
);
CREATE INDEX call_events_call ON call_events(call_id, id);
