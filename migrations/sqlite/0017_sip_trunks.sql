-- SIP trunks: where a team's phone numbers ring out. The password is sealed (AES-256-GCM with a
-- server key, see domain::sealed); a number rings through the trunk it names, or on the
-- simulated network when it names none.
CREATE TABLE sip_trunks (
    id          BLOB PRIMARY KEY,
    team_id     BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    transport   TEXT NOT NULL,
    username    TEXT,
    password    BLOB,
    created_at  TEXT NOT NULL,
    UNIQUE (team_id, name)
);

ALTER TABLE phone_numbers ADD COLUMN trunk_id BLOB REFERENCES sip_trunks(id);
