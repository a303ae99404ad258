-- Audit trail.
--
-- audit_exchanges is narrow and unpartitioned: it assigns seq, keeps
-- exchange ids unique across all time (a unique index on a partitioned
-- table must include the partition key, so it could not), routes a seq or
-- an exchange id to its partition (time), and holds the only mutable
-- column, the Merkle log index.
--
-- audit_records holds the record itself, partitioned by month of the record
-- time. Its partitions are written once (until retention erases payloads):
-- integration updates no wide row, and old months can be detached or
-- archived as a whole. Partitions are named
-- audit_records_yYYYYmMM and created by the store (ahead of time for the
-- current and next month, and on demand for any other month).

CREATE TABLE audit_exchanges (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	exchange_id text COLLATE "C" NOT NULL UNIQUE,
	time        timestamptz NOT NULL,
	log_index   bigint UNIQUE CHECK (log_index >= 0) -- NULL until integrated
);
CREATE INDEX audit_exchanges_unintegrated ON audit_exchanges(seq) WHERE log_index IS NULL;

CREATE TABLE audit_records (
	seq           bigint NOT NULL,
	time          timestamptz NOT NULL,
	exchange_id   text COLLATE "C" NOT NULL,
	requester     text COLLATE "C" NOT NULL,
	provider      text COLLATE "C" NOT NULL DEFAULT '',
	service       text COLLATE "C" NOT NULL DEFAULT '',
	purpose       text COLLATE "C" NOT NULL DEFAULT '',
	outcome       text COLLATE "C" NOT NULL,
	reason        text COLLATE "C" NOT NULL DEFAULT '',
	subject_index bytea,          -- HMAC-SHA-256 blind index
	period        text COLLATE "C" NOT NULL, -- data key period
	nonce         bytea NOT NULL, -- commitment nonce
	ciphertext    bytea NOT NULL,
	leaf          bytea NOT NULL,
	PRIMARY KEY (seq, time)
) PARTITION BY RANGE (time);
CREATE INDEX audit_records_requester ON audit_records(requester, seq);
CREATE INDEX audit_records_provider ON audit_records(provider, seq);
CREATE INDEX audit_records_subject ON audit_records(subject_index, seq) WHERE subject_index IS NOT NULL;

-- Data keys, one per period, wrapped by a key-encryption key.
CREATE TABLE audit_keys (
	period  text COLLATE "C" PRIMARY KEY,
	kek_id  text NOT NULL,
	wrapped bytea NOT NULL
);
