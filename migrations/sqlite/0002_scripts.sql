-- Scripts: the assistant definitions calls run. The definition is the validated script as JSON.
CREATE TABLE scripts (
    id          BLOB PRIMARY KEY,
    team_id     BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    script_type TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX scripts_team ON scripts(team_id, id);
