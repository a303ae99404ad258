-- The federation gateway (issue 11, seed 004): registered certificates of
-- national backends, download batches (one per accepted upload, with the
-- upload's audit information), their keys, callback subscriptions and the
-- announcements still to deliver.
CREATE TABLE efgs_certificates (
	thumbprint text PRIMARY KEY,
	country    text NOT NULL,
	type       text NOT NULL,
	pem        text NOT NULL,
	host       text NOT NULL DEFAULT '',
	signature  text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
);
CREATE INDEX efgs_certificates_country ON efgs_certificates(country, type);

CREATE TABLE efgs_batches (
	tag                 text PRIMARY KEY,
	day                 text NOT NULL,
	seq                 integer NOT NULL,
	next_tag            text NOT NULL DEFAULT '',
	created_at          timestamptz NOT NULL,
	upload_tag          text NOT NULL UNIQUE,
	country             text NOT NULL,
	uploader_thumbprint text NOT NULL,
	signing_thumbprint  text NOT NULL,
	signature           text NOT NULL,
	content_type        text NOT NULL,
	amount              integer NOT NULL,
	UNIQUE (day, seq)
);

CREATE TABLE efgs_keys (
	batch_tag text NOT NULL REFERENCES efgs_batches(tag) ON DELETE CASCADE,
	idx       integer NOT NULL,
	hash      bytea NOT NULL UNIQUE,
	origin    text NOT NULL,
	proto     bytea NOT NULL,
	PRIMARY KEY (batch_tag, idx)
);

CREATE TABLE efgs_callbacks (
	country    text NOT NULL,
	id         text NOT NULL,
	url        text NOT NULL,
	failures   integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (country, id)
);

CREATE TABLE efgs_callback_tasks (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	country     text NOT NULL,
	callback_id text NOT NULL,
	batch_tag   text NOT NULL REFERENCES efgs_batches(tag) ON DELETE CASCADE,
	retries     integer NOT NULL DEFAULT 0,
	not_before  timestamptz NOT NULL,
	FOREIGN KEY (country, callback_id) REFERENCES efgs_callbacks(country, id) ON DELETE CASCADE
);
CREATE INDEX efgs_callback_tasks_due ON efgs_callback_tasks(not_before, id);
CREATE INDEX efgs_callback_tasks_batch ON efgs_callback_tasks(batch_tag);
