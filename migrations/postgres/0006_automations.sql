-- Automations (trigger + steps), their executions (a durable, leased queue like calls), inbound hook
-- receipts (idempotency), outbound webhook endpoints and their deliveries, and the outbox that turns
-- call transitions into events without the dispatcher knowing about automations.

CREATE TABLE automations (
    id              UUID PRIMARY KEY,
    team_id         UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    trigger_type    TEXT NOT NULL,            -- webhook | call_completed | call_scheduled
    definition      JSONB NOT NULL,            -- JSON: trigger and steps
    hook_token_hash BYTEA UNIQUE,              -- SHA-256 of the token in /api/v1/hooks/{token}
    hook_secret     TEXT,                     -- HMAC key for X-Webhook-Signature, when signing is on
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX automations_team ON automations(team_id, id);

CREATE TABLE executions (
    id              UUID PRIMARY KEY,
    team_id         UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    automation_id   UUID NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,            -- Pending | Processing | Completed | Failed | Dead Letter
    trigger_kind    TEXT NOT NULL,
    steps           JSONB NOT NULL,            -- JSON: the steps as they were when it started
    context         JSONB NOT NULL,            -- JSON: trigger, contact, objects, mapped, source, call
    steps_total     INTEGER NOT NULL,
    steps_done      INTEGER NOT NULL DEFAULT 0,
    due_ms          BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    waiting_call_id UUID,                     -- a create-call step waits for this call to end
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX executions_due ON executions(status, due_ms);
CREATE INDEX executions_team ON executions(team_id, id);
CREATE INDEX executions_automation ON executions(automation_id, id);

CREATE TABLE execution_steps (
    execution_id UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    step_key     TEXT NOT NULL,               -- position in the tree: "2", "3.then.0"
    position     INTEGER NOT NULL,            -- order of first touch, for the log
    step_type    TEXT NOT NULL,
    name         TEXT,
    status       TEXT NOT NULL,               -- Processing | Completed | Failed | Skipped
    input        JSONB,
    output       JSONB,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    duration_ms  BIGINT,
    PRIMARY KEY (execution_id, step_key)
);

CREATE TABLE hook_receipts (
    automation_id UUID NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
    idem_key      TEXT NOT NULL,
    execution_id  UUID NOT NULL,
    received_ms   BIGINT NOT NULL,
    PRIMARY KEY (automation_id, idem_key)
);

CREATE TABLE webhook_endpoints (
    id                    UUID PRIMARY KEY,
    team_id               UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    description           TEXT,
    events                JSONB NOT NULL,      -- JSON array of event types
    secret                TEXT NOT NULL,      -- whsec_…
    previous_secret       TEXT,               -- still signed with until previous_secret_until
    previous_secret_until TIMESTAMPTZ,
    enabled               BOOLEAN NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_team ON webhook_endpoints(team_id, id);

CREATE TABLE webhook_deliveries (
    id             UUID PRIMARY KEY,          -- webhook-id is msg_<id>, the same on every try
    team_id        UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    endpoint_id    UUID NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_type     TEXT NOT NULL,
    ordering_key   TEXT NOT NULL,             -- deliveries with one key go out one at a time, in seq order
    seq            BIGINT NOT NULL,
    payload        JSONB NOT NULL,
    status         TEXT NOT NULL,             -- pending | delivered | dead_letter
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_owner    TEXT,
    lease_until_ms BIGINT,
    last_status    INTEGER,
    last_error     TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    delivered_at   TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_ms);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint_id, ordering_key, seq);

CREATE TABLE webhook_attempts (
    id          UUID PRIMARY KEY,
    delivery_id UUID NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);

-- Call transitions that are events (scheduled, started, ended), written by the same transaction as
-- the transition, for teams that listen. A worker fans them out into executions and deliveries.
CREATE TABLE event_outbox (
    seq      BIGSERIAL PRIMARY KEY,
    call_id  UUID NOT NULL,
    progress TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION call_events_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF ((NEW.progress = 'scheduled' AND NEW.attempt = 0) OR NEW.progress IN ('in_progress', 'ended'))
       AND EXISTS (SELECT 1 FROM calls c WHERE c.id = NEW.call_id AND (
              EXISTS (SELECT 1 FROM automations a WHERE a.team_id = c.team_id AND a.enabled
                      AND a.trigger_type IN ('call_completed', 'call_scheduled'))
           OR EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.team_id = c.team_id AND w.enabled))) THEN
        INSERT INTO event_outbox (call_id, progress, at) VALUES (NEW.call_id, NEW.progress, NEW.at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER call_events_outbox AFTER INSERT ON call_events
    FOR EACH ROW EXECUTE FUNCTION call_events_outbox();
