-- Registers: participants, service catalogue, authorisations, the person
-- directory (integrations) and the certificates issued by the network CA.
--
-- Times are TEXT in one fixed-width UTC layout with nanoseconds
-- ("2006-01-02T15:04:05.000000000Z"): exact, readable, and sortable as text.
-- An open-ended or absent time is NULL.
--
-- Lists that are values owned by one row and never looked up on their own
-- (service fields, purposes, capacities, permitted fields per service) are
-- JSON arrays/objects: one row per entry, exact round trip. The services an
-- authorisation names are a child table so that the database itself keeps
-- them pointing at existing services.

CREATE TABLE participants (
	id               TEXT PRIMARY KEY CHECK (id <> ''),
	name             TEXT NOT NULL,
	kind             TEXT NOT NULL,
	status           TEXT NOT NULL,
	incident_contact TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE services (
	id              TEXT PRIMARY KEY CHECK (id <> ''),
	provider        TEXT NOT NULL REFERENCES participants(id),
	base_url        TEXT NOT NULL,
	description     TEXT NOT NULL DEFAULT '',
	classification  INTEGER NOT NULL CHECK (classification BETWEEN 0 AND 4),
	fields          TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(fields)), -- JSON array of JSON pointers
	concerns_person INTEGER NOT NULL CHECK (concerns_person IN (0, 1))
) STRICT;
CREATE INDEX services_provider ON services(provider);

CREATE TABLE authorisations (
	id           TEXT PRIMARY KEY CHECK (id <> ''),
	reference    TEXT NOT NULL,
	grantee      TEXT NOT NULL REFERENCES participants(id),
	purposes     TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(purposes)),   -- JSON array
	fields       TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(fields)),     -- JSON object: service -> pointers
	capacities   TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(capacities)), -- JSON array of {sector, code}
	valid_from   TEXT NOT NULL,
	valid_to     TEXT,            -- exclusive; NULL: open-ended
	status       TEXT NOT NULL,
	has_limits   INTEGER NOT NULL DEFAULT 0 CHECK (has_limits IN (0, 1)),
	limit_rate   REAL NOT NULL DEFAULT 0 CHECK (limit_rate >= 0),
	limit_burst  INTEGER NOT NULL DEFAULT 0 CHECK (limit_burst >= 0),
	limit_max_concurrent INTEGER NOT NULL DEFAULT 0 CHECK (limit_max_concurrent >= 0),
	CHECK (valid_to IS NULL OR valid_to > valid_from)
) STRICT;
CREATE INDEX authorisations_grantee ON authorisations(grantee);

CREATE TABLE authorisation_services (
	authorisation TEXT NOT NULL REFERENCES authorisations(id) ON DELETE CASCADE,
	position      INTEGER NOT NULL,
	service       TEXT NOT NULL REFERENCES services(id),
	PRIMARY KEY (authorisation, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX authorisation_services_service ON authorisation_services(service);

CREATE TABLE integrations (
	person      TEXT NOT NULL CHECK (person <> ''),
	participant TEXT NOT NULL REFERENCES participants(id),
	sector      TEXT NOT NULL CHECK (sector <> ''),
	capacity    TEXT NOT NULL CHECK (capacity <> ''),
	valid_from  TEXT NOT NULL,
	valid_to    TEXT,             -- exclusive; NULL: open-ended
	PRIMARY KEY (person, participant, sector, capacity, valid_from),
	CHECK (valid_to IS NULL OR valid_to > valid_from)
) STRICT, WITHOUT ROWID;
-- The primary key serves lookups by person and by (person, participant).
CREATE INDEX integrations_participant ON integrations(participant, person);

CREATE TABLE certificates (
	serial            TEXT PRIMARY KEY CHECK (serial <> ''),
	participant       TEXT NOT NULL,
	not_before        TEXT NOT NULL,
	not_after         TEXT NOT NULL,
	revoked_at        TEXT,        -- NULL: not revoked
	revocation_reason TEXT NOT NULL DEFAULT '',
	pem               TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX certificates_participant ON certificates(participant);

-- One row per revocation; seq only grows (AUTOINCREMENT never reuses a
-- value), so it is the cursor of RevokedSince.
CREATE TABLE revocations (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	serial TEXT NOT NULL UNIQUE REFERENCES certificates(serial)
);
