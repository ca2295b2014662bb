-- Teams, API keys, contacts, lists and objects. Ids are UUIDv7 , times TIMESTAMPTZ, JSON as JSONB.

CREATE TABLE teams (
    id                   UUID PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    region               TEXT NOT NULL,
    timezone             TEXT NOT NULL,
    requests_per_second  INTEGER,          -- NULL: the server's configured default
    max_concurrent_calls INTEGER,          -- NULL: the server's configured default
    created_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    team_id      UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name         TEXT,
    prefix       TEXT NOT NULL,
    key_hash     BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_team ON api_keys(team_id);

CREATE TABLE contacts (
    id           UUID PRIMARY KEY,
    team_id      UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL,
    first_name   TEXT,
    last_name    TEXT,
    email        TEXT,
    title        TEXT,
    company      TEXT,
    address      TEXT,
    location     TEXT,
    timezone     TEXT,
    metadata     JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, phone_number)
);
CREATE INDEX contacts_team_email ON contacts(team_id, email);
CREATE INDEX contacts_team_id ON contacts(team_id, id);

CREATE TABLE lists (
    id         UUID PRIMARY KEY,
    team_id    UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX lists_team ON lists(team_id, id);

CREATE TABLE list_members (
    list_id    UUID NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    contact_id UUID NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    added_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX list_members_contact ON list_members(contact_id);

CREATE TABLE object_types (
    id                UUID PRIMARY KEY,
    team_id           UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    type_name         TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    description       TEXT,
    schema            JSONB NOT NULL,  -- as the client sent it
    schema_form       TEXT NOT NULL,  -- shorthand | json_schema
    json_schema       JSONB NOT NULL,  -- what data is validated against
    validation_mode   TEXT NOT NULL,
    unique_by_contact BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, type_name)
);

CREATE TABLE objects (
    id             UUID PRIMARY KEY,
    team_id        UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    object_type_id UUID NOT NULL REFERENCES object_types(id) ON DELETE CASCADE,
    data           JSONB NOT NULL,
    upsert_key     TEXT,
    upsert_value   TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX objects_upsert ON objects(object_type_id, upsert_key, upsert_value)
    WHERE upsert_value IS NOT NULL;
CREATE INDEX objects_type ON objects(object_type_id, id);

CREATE TABLE object_contacts (
    object_id      UUID NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
    contact_id     UUID NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    object_type_id UUID NOT NULL,
    exclusive      BOOLEAN NOT NULL,  -- the type is unique_by_contact: one object of it per contact
    metadata       JSONB NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (object_id, contact_id)
);
CREATE UNIQUE INDEX object_contacts_exclusive ON object_contacts(contact_id, object_type_id)
    WHERE exclusive;
CREATE INDEX object_contacts_contact ON object_contacts(contact_id);

-- Idempotency-Key replays: kept 24 h. Times as unix milliseconds so expiry is a plain comparison.
CREATE TABLE idempotency_keys (
    team_id       UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        INTEGER,           -- NULL while the first request is still running
    response_body BYTEA,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (team_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ms);
