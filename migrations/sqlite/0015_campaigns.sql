-- Campaigns: a list called through one script, paced by the campaign worker, which creates each
-- member's call through the calls service when there is room (so the dispatcher's own limits and
-- windows apply, and a big campaign never floods the queue).
CREATE TABLE campaigns (
    id                   BLOB PRIMARY KEY,
    team_id              BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    list_id              BLOB NOT NULL REFERENCES lists(id),
    script_id            BLOB NOT NULL REFERENCES scripts(id),
    from_numbers         TEXT NOT NULL,            -- JSON array of E.164 caller ids, rotated
    status               TEXT NOT NULL,            -- scheduled | running | paused | completed | cancelled
    scheduled_time       TEXT NOT NULL,
    calling_window       TEXT,
    max_concurrent_calls INTEGER NOT NULL,
    calls_per_minute     INTEGER,
    retry_policy         TEXT,
    variables            TEXT NOT NULL,
    join_new_members     INTEGER NOT NULL,
    status_reason        TEXT,
    feeder_until_ms      INTEGER,                   -- a worker feeding it holds it until then
    redial_of            BLOB,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX campaigns_team ON campaigns(team_id, id);
CREATE INDEX campaigns_status ON campaigns(status);

-- One row per member: pending, calling (its call id chosen before the call is created, so a
-- crash in between creates it at most once), or skipped with the reason.
CREATE TABLE campaign_members (
    campaign_id BLOB NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id  BLOB NOT NULL,
    state       TEXT NOT NULL,
    call_id     BLOB,
    reason      TEXT,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_members_state ON campaign_members(campaign_id, state, seq);
CREATE INDEX campaign_members_call ON campaign_members(call_id);

CREATE TABLE campaign_log (
    id          BLOB PRIMARY KEY,
    campaign_id BLOB NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX campaign_log_campaign ON campaign_log(campaign_id, id);
