-- Script versions: every create or replace stores the definition as a new version; a call keeps
-- the version it was created with and runs that one, so an edit never changes calls already
-- scheduled (unless the replace asks to move them).
CREATE TABLE script_versions (
    id          UUID PRIMARY KEY,            -- UUIDv7: cursor pages, newest last
    script_id   UUID NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    team_id     UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    definition  JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (script_id, version)
);
ALTER TABLE scripts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- What exists is version 1 (the id reuses the script's: unique, and as old as the script).
INSERT INTO script_versions (id, script_id, team_id, version, name, definition, created_at)
    SELECT id, id, team_id, 1, name, definition, updated_at FROM scripts;

-- Appended to both in the same order: the outbox trigger copies `calls.*` into a snapshot.
ALTER TABLE calls ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE call_snapshots ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;
