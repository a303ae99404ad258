-- A record names the Merkle log it is committed to (the log's origin, as in
-- its receipt), beside its index in that log.
ALTER TABLE audit_records ADD COLUMN log_id TEXT;

-- Named positions of the trail's readers (the SIEM export).
CREATE TABLE audit_cursors (
	name       TEXT PRIMARY KEY,
	position   INTEGER NOT NULL CHECK (position >= 0),
	updated_at INTEGER NOT NULL -- Unix microseconds
);
