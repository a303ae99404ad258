-- Audit records: searchable non-personal columns in clear, the record
-- itself AES-256-GCM encrypted, and its Merkle-log commitment.
CREATE TABLE audit_records (
	seq           INTEGER PRIMARY KEY,
	exchange_id   TEXT NOT NULL UNIQUE,
	time          INTEGER NOT NULL,            -- Unix microseconds, UTC
	requester     TEXT NOT NULL,
	provider      TEXT NOT NULL DEFAULT '',
	service       TEXT NOT NULL DEFAULT '',
	purpose       TEXT NOT NULL DEFAULT '',
	outcome       TEXT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	subject_index BLOB,                        -- HMAC-SHA-256 blind index
	period        TEXT NOT NULL,               -- data key period
	nonce         BLOB NOT NULL,               -- commitment nonce
	ciphertext    BLOB NOT NULL,
	leaf          BLOB NOT NULL,
	log_index     INTEGER                      -- NULL until integrated
);
CREATE INDEX audit_records_unintegrated ON audit_records(seq) WHERE log_index IS NULL;
CREATE UNIQUE INDEX audit_records_log_index ON audit_records(log_index) WHERE log_index IS NOT NULL;
CREATE INDEX audit_records_requester ON audit_records(requester, seq);
CREATE INDEX audit_records_provider ON audit_records(provider, seq);
CREATE INDEX audit_records_subject ON audit_records(subject_index, seq) WHERE subject_index IS NOT NULL;

-- Data keys, one per period, wrapped by a key-encryption key.
CREATE TABLE audit_keys (
	period  TEXT PRIMARY KEY,
	kek_id  TEXT NOT NULL,
	wrapped BLOB NOT NULL
);
