-- Dashboard users (people who sign in to the web dashboard of one team) and their sessions.
-- Passwords are argon2id PHC strings; a session is found by the SHA-256 of its cookie, so the
-- table holds nothing a reader could sign in with.
CREATE TABLE dashboard_users (
    id             UUID PRIMARY KEY,
    team_id        UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    last_signed_in_at TIMESTAMPTZ
);
CREATE INDEX dashboard_users_team ON dashboard_users(team_id);

CREATE TABLE dashboard_sessions (
    token_hash  BYTEA PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES dashboard_users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions(user_id);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);

-- The dashboard's live view reads a team's call events by time.
CREATE INDEX call_events_at ON call_events(at);
