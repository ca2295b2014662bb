-- Dashboard users (people who sign in to the web dashboard of one team) and their sessions.
-- Passwords are argon2id PHC strings; a session is found by the SHA-256 of its cookie, so the
-- table holds nothing a reader could sign in with.
CREATE TABLE dashboard_users (
    id             BLOB PRIMARY KEY,
    team_id        BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_signed_in_at TEXT
);
CREATE INDEX dashboard_users_team ON dashboard_users(team_id);

CREATE TABLE dashboard_sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES dashboard_users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions(user_id);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);

-- The dashboard's live view reads a team's call events by time.
CREATE INDEX call_events_at ON call_events(at);
