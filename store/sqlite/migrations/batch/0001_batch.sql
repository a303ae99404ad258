-- Batch consultation (issue 10 item 4): submitted batches and their items.
-- Times are Unix microseconds (UTC). An item is claimable when it is
-- pending and its lease has run out; a held batch's items carry the
-- largest lease, so that they are never claimed until the submission is
-- recorded and the batch activated. A result is written in the same
-- transaction that ends the item's claim.
CREATE TABLE batches (
	id          TEXT PRIMARY KEY,
	participant TEXT NOT NULL,
	user_name   TEXT NOT NULL DEFAULT '',
	serial      TEXT NOT NULL,
	certificate BLOB NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('held', 'running', 'done', 'expired')),
	created     INTEGER NOT NULL,
	finished    INTEGER NOT NULL DEFAULT 0,
	expires     INTEGER NOT NULL DEFAULT 0,
	retention   INTEGER NOT NULL,
	total       INTEGER NOT NULL,
	done        INTEGER NOT NULL DEFAULT 0,
	allowed     INTEGER NOT NULL DEFAULT 0,
	denied      INTEGER NOT NULL DEFAULT 0,
	failed      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batches_state_expires ON batches(state, expires);

CREATE TABLE batch_items (
	batch       TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	participant TEXT NOT NULL,
	item        BLOB NOT NULL,
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
	lease_until INTEGER NOT NULL,
	token       TEXT NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	result      BLOB,
	released    BLOB,
	PRIMARY KEY (batch, seq)
);
CREATE INDEX batch_items_claim ON batch_items(participant, lease_until) WHERE state = 'pending';
