-- A team can turn call recording off for all its calls (a script can only turn it off for its own).
ALTER TABLE teams ADD COLUMN recordings BOOLEAN NOT NULL DEFAULT TRUE;
