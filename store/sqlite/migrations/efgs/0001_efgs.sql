-- The federation gateway (issue 11, seed 004): registered certificates of
-- national backends, download batches (one per accepted upload, with the
-- upload's audit information), their keys, callback subscriptions and the
-- announcements still to deliver.
CREATE TABLE efgs_certificates (
	thumbprint TEXT PRIMARY KEY,
	country    TEXT NOT NULL,
	type       TEXT NOT NULL,
	pem        TEXT NOT NULL,
	host       TEXT NOT NULL DEFAULT '',
	signature  TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	revoked_at TEXT
);
CREATE INDEX efgs_certificates_country ON efgs_certificates(country, type);

CREATE TABLE efgs_batches (
	tag                 TEXT PRIMARY KEY,
	day                 TEXT NOT NULL,
	seq                 INTEGER NOT NULL,
	next_tag            TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	upload_tag          TEXT NOT NULL UNIQUE,
	country             TEXT NOT NULL,
	uploader_thumbprint TEXT NOT NULL,
	signing_thumbprint  TEXT NOT NULL,
	signature           TEXT NOT NULL,
	content_type        TEXT NOT NULL,
	amount              INTEGER NOT NULL,
	UNIQUE (day, seq)
);

CREATE TABLE efgs_keys (
	batch_tag TEXT NOT NULL REFERENCES efgs_batches(tag) ON DELETE CASCADE,
	idx       INTEGER NOT NULL,
	hash      BLOB NOT NULL UNIQUE,
	origin    TEXT NOT NULL,
	proto     BLOB NOT NULL,
	PRIMARY KEY (batch_tag, idx)
) WITHOUT ROWID;

CREATE TABLE efgs_callbacks (
	country    TEXT NOT NULL,
	id         TEXT NOT NULL,
	url        TEXT NOT NULL,
	failures   INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	PRIMARY KEY (country, id)
);

CREATE TABLE efgs_callback_tasks (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	country     TEXT NOT NULL,
	callback_id TEXT NOT NULL,
	batch_tag   TEXT NOT NULL REFERENCES efgs_batches(tag) ON DELETE CASCADE,
	retries     INTEGER NOT NULL DEFAULT 0,
	not_before  TEXT NOT NULL,
	FOREIGN KEY (country, callback_id) REFERENCES efgs_callbacks(country, id) ON DELETE CASCADE
);
CREATE INDEX efgs_callback_tasks_due ON efgs_callback_tasks(not_before, id);
CREATE INDEX efgs_callback_tasks_batch ON efgs_callback_tasks(batch_tag);
