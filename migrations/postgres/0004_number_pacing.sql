-- Calls-per-second limit per caller id: when the number last dialled (unix ms).
ALTER TABLE phone_numbers ADD COLUMN last_dial_ms BIGINT;
