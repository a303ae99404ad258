-- Mutation push (issue 10): publications, the outbox (one entry per
-- publication and eligible subscription) and the pull feeds' cursors.
-- Times as in the registers: fixed-width UTC text.
CREATE TABLE publications (
	id           TEXT PRIMARY KEY,
	publisher    TEXT NOT NULL,
	service      TEXT NOT NULL,
	operation    TEXT NOT NULL,
	idem_key     TEXT NOT NULL,
	digest       TEXT NOT NULL,
	subject_kind TEXT NOT NULL,
	subject      TEXT NOT NULL,
	effective    TEXT NOT NULL,
	payload      BLOB NOT NULL,
	routed       INTEGER NOT NULL,
	created_at   TEXT NOT NULL,
	UNIQUE (service, publisher, idem_key)
) STRICT;

CREATE TABLE outbox (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	publication  TEXT NOT NULL REFERENCES publications(id),
	subscription TEXT NOT NULL,
	subscriber   TEXT NOT NULL,
	queue        TEXT NOT NULL, -- subscriber and subject: delivered in seq order
	delivery     TEXT NOT NULL CHECK (delivery IN ('push', 'pull')),
	state        TEXT NOT NULL CHECK (state IN ('pending', 'available', 'delivered', 'dead', 'dropped')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      TEXT NOT NULL,
	since        TEXT NOT NULL,
	lease_owner  TEXT,
	lease_until  TEXT,
	body         BLOB,
	seal         TEXT NOT NULL DEFAULT '',
	receipt      TEXT NOT NULL DEFAULT '',
	exchange_id  TEXT NOT NULL DEFAULT '',
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at TEXT
) STRICT;
CREATE INDEX outbox_pending_queue ON outbox(queue, seq) WHERE state = 'pending';
CREATE INDEX outbox_pending_due ON outbox(next_at, seq) WHERE state = 'pending';
CREATE INDEX outbox_subscription ON outbox(subscription, seq);

CREATE TABLE cursors (
	subscription TEXT PRIMARY KEY,
	acked        INTEGER NOT NULL
) STRICT;
