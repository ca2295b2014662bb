-- Each event carries the call as it was when the event happened: the outbox trigger copies the call
-- row into call_snapshots in the transition's own transaction (the call is updated before its
-- event is inserted). A column added to calls must be added here too (LIKE copied today's);
-- reading a snapshot selects every column a call has, so a missing one fails loudly.
CREATE TABLE call_snapshots (
    seq BIGINT PRIMARY KEY REFERENCES event_outbox(seq) ON DELETE CASCADE,
    LIKE calls
);

CREATE OR REPLACE FUNCTION call_events_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s BIGINT;
BEGIN
    IF ((NEW.progress = 'scheduled' AND NEW.attempt = 0) OR NEW.progress IN ('in_progress', 'ended'))
       AND EXISTS (SELECT 1 FROM calls c WHERE c.id = NEW.call_id AND (
              EXISTS (SELECT 1 FROM automations a WHERE a.team_id = c.team_id AND a.enabled
                      AND a.trigger_type IN ('call_completed', 'call_scheduled'))
           OR EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.team_id = c.team_id AND w.enabled))) THEN
        INSERT INTO event_outbox (call_id, progress, at) VALUES (NEW.call_id, NEW.progress, NEW.at)
            RETURNING seq INTO s;
        INSERT INTO call_snapshots SELECT s, c.* FROM calls c WHERE c.id = NEW.call_id;
    END IF;
    RETURN NULL;
END $$;
