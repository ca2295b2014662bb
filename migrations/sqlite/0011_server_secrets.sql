-- Secrets the server makes for itself on first start (the web-call secret), shared by every
-- process on the database: a credential one replica mints, another verifies.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
