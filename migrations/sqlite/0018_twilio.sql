-- A team's Twilio account (its numbers marked `twilio` ring through it). The auth token is sealed
-- (AES-256-GCM with the server key, bound to the team's id, see domain::sealed). One team per
-- account: an inbound webhook names the account, and its number then names the team.
CREATE TABLE twilio_accounts (
    team_id      BLOB PRIMARY KEY REFERENCES teams(id) ON DELETE CASCADE,
    account_sid  TEXT NOT NULL UNIQUE,
    auth_token   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

ALTER TABLE phone_numbers ADD COLUMN twilio INTEGER NOT NULL DEFAULT 0;
