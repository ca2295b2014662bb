-- A team's do-not-call list: numbers its calls must never ring, whoever scheduled them.
CREATE TABLE do_not_call (
    id           UUID PRIMARY KEY,
    team_id      UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL,
    reason       TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, phone_number)
);
