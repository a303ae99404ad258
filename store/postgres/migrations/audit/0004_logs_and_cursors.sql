-- Several hub nodes on one database (multi).
--
-- A record names the Merkle log it is committed to (the log's origin, as in
-- its receipt), beside its index in that log.
ALTER TABLE audit_exchanges ADD COLUMN log_id text COLLATE "C";

-- Named positions of the trail's readers (the SIEM export), shared by every
-- node. Positions are audit sequence numbers, which follow commit order
-- (InsertBatch draws them under a transaction-scoped advisory lock held
-- until commit), so a reader that resumes after its position skips nothing.
CREATE TABLE audit_cursors (
	name       text COLLATE "C" PRIMARY KEY,
	position   bigint NOT NULL CHECK (position >= 0),
	updated_at timestamptz NOT NULL DEFAULT now()
);
