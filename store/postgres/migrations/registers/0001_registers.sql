-- Registers: participants, service catalogue, authorisations, the person
-- directory (integrations) and the certificates issued by the network CA.
--
-- Identifiers use the "C" collation: byte order, as Go compares strings,
-- whatever the database's default collation (and cheaper to index).
--
-- Times are timestamptz (microseconds) plus a *_ns column holding the
-- 0–999 nanoseconds below the microsecond, so that Go times round-trip
-- exactly. An open-ended or absent time is NULL (both columns).
--
-- Lists owned by one row and never looked up on their own are text[] or
-- jsonb. The services an authorisation names are a child table, so that
-- the database keeps them pointing at existing services.

CREATE TABLE participants (
	id               text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	name             text NOT NULL,
	kind             text NOT NULL,
	status           text NOT NULL,
	incident_contact text NOT NULL DEFAULT ''
);

CREATE TABLE services (
	id              text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	provider        text COLLATE "C" NOT NULL REFERENCES participants(id),
	base_url        text NOT NULL,
	description     text NOT NULL DEFAULT '',
	classification  integer NOT NULL CHECK (classification BETWEEN 0 AND 4),
	fields          text[] NOT NULL DEFAULT '{}', -- JSON pointers
	concerns_person boolean NOT NULL
);
CREATE INDEX services_provider ON services(provider);

CREATE TABLE authorisations (
	id            text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	reference     text NOT NULL,
	grantee       text COLLATE "C" NOT NULL REFERENCES participants(id),
	purposes      text[] NOT NULL DEFAULT '{}',
	fields        jsonb NOT NULL DEFAULT 'null', -- object: service -> pointers
	capacities    jsonb NOT NULL DEFAULT 'null', -- array of {sector, code}
	valid_from    timestamptz NOT NULL,
	valid_from_ns smallint NOT NULL CHECK (valid_from_ns BETWEEN 0 AND 999),
	valid_to      timestamptz,                   -- exclusive; NULL: open-ended
	valid_to_ns   smallint CHECK (valid_to_ns BETWEEN 0 AND 999),
	status        text NOT NULL,
	has_limits    boolean NOT NULL DEFAULT false,
	limit_rate    double precision NOT NULL DEFAULT 0 CHECK (limit_rate >= 0),
	limit_burst   integer NOT NULL DEFAULT 0 CHECK (limit_burst >= 0),
	limit_max_concurrent integer NOT NULL DEFAULT 0 CHECK (limit_max_concurrent >= 0),
	CHECK ((valid_to IS NULL) = (valid_to_ns IS NULL)),
	CHECK (valid_to IS NULL OR (valid_to, valid_to_ns) > (valid_from, valid_from_ns))
);
CREATE INDEX authorisations_grantee ON authorisations(grantee);

CREATE TABLE authorisation_services (
	authorisation text COLLATE "C" NOT NULL REFERENCES authorisations(id) ON DELETE CASCADE,
	position      integer NOT NULL,
	service       text COLLATE "C" NOT NULL REFERENCES services(id),
	PRIMARY KEY (authorisation, position)
);
CREATE INDEX authorisation_services_service ON authorisation_services(service);

CREATE TABLE integrations (
	person       text COLLATE "C" NOT NULL CHECK (person <> ''),
	participant  text COLLATE "C" NOT NULL REFERENCES participants(id),
	sector       text COLLATE "C" NOT NULL CHECK (sector <> ''),
	capacity     text COLLATE "C" NOT NULL CHECK (capacity <> ''),
	valid_from   timestamptz NOT NULL,
	valid_from_ns smallint NOT NULL CHECK (valid_from_ns BETWEEN 0 AND 999),
	valid_to     timestamptz,                   -- exclusive; NULL: open-ended
	valid_to_ns  smallint CHECK (valid_to_ns BETWEEN 0 AND 999),
	PRIMARY KEY (person, participant, sector, capacity, valid_from, valid_from_ns),
	CHECK ((valid_to IS NULL) = (valid_to_ns IS NULL)),
	CHECK (valid_to IS NULL OR (valid_to, valid_to_ns) > (valid_from, valid_from_ns))
);
-- The primary key serves lookups by person and by (person, participant).
CREATE INDEX integrations_participant ON integrations(participant, person);

CREATE TABLE certificates (
	serial            text COLLATE "C" PRIMARY KEY CHECK (serial <> ''),
	participant       text COLLATE "C" NOT NULL,
	not_before        timestamptz NOT NULL,
	not_before_ns     smallint NOT NULL,
	not_after         timestamptz NOT NULL,
	not_after_ns      smallint NOT NULL,
	revoked_at        timestamptz, -- NULL: not revoked
	revoked_at_ns     smallint,
	revocation_reason text NOT NULL DEFAULT '',
	pem               text NOT NULL DEFAULT ''
);
CREATE INDEX certificates_participant ON certificates(participant);

-- One row per revocation; seq is the cursor of RevokedSince. Revocations
-- are serialised (RevokeCertificate locks this table), so seq order is
-- commit order and a poller never skips a late-committing lower seq.
CREATE TABLE revocations (
	seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	serial text COLLATE "C" NOT NULL UNIQUE REFERENCES certificates(serial)
);
