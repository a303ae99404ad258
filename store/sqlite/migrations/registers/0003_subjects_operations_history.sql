-- Wave 2 of the registers (issues 8, 15, 16):
--   * services name the kind of their subject and declare operations;
--     authorisations grant operations (JSON, owned by the row);
--   * integrations name the kind of their subject (person, enterprise, …),
--     which joins their key; the change feed carries it;
--   * the registers carry a version, bumped by every apply that writes a
--     participant, service or authorisation (optimistic concurrency);
--   * the person directory keeps its history: every register, end and
--     correction, by whom, never pruned (no hard delete through the API).

ALTER TABLE services ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN operations TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(operations)); -- JSON array of operations
ALTER TABLE authorisations ADD COLUMN operations TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(operations)); -- JSON object: service -> operation ids

-- Integrations gain their subject kind; SQLite cannot change a primary key
-- in place, so the table is rebuilt (its triggers go with it).
DROP TRIGGER integrations_inserted;
DROP TRIGGER integrations_updated;
DROP TRIGGER integrations_deleted;
CREATE TABLE integrations_v3 (
	person      TEXT NOT NULL CHECK (person <> ''),
	participant TEXT NOT NULL REFERENCES participants(id),
	sector      TEXT NOT NULL CHECK (sector <> ''),
	capacity    TEXT NOT NULL CHECK (capacity <> ''),
	valid_from  TEXT NOT NULL,
	valid_to    TEXT,             -- exclusive; NULL: open-ended
	kind        TEXT NOT NULL DEFAULT 'person' CHECK (kind <> ''), -- subject kind; a person is 'person'
	PRIMARY KEY (person, participant, sector, capacity, valid_from, kind),
	CHECK (valid_to IS NULL OR valid_to > valid_from)
) STRICT, WITHOUT ROWID;
INSERT INTO integrations_v3(person, participant, sector, capacity, valid_from, valid_to, kind)
	SELECT person, participant, sector, capacity, valid_from, valid_to, 'person' FROM integrations;
DROP TABLE integrations;
ALTER TABLE integrations_v3 RENAME TO integrations;
CREATE INDEX integrations_participant ON integrations(participant, person);

ALTER TABLE integration_changes ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
CREATE TRIGGER integrations_inserted AFTER INSERT ON integrations BEGIN
	INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (NEW.kind, NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_to, 0);
END;
CREATE TRIGGER integrations_updated AFTER UPDATE ON integrations BEGIN
	INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (OLD.kind, OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_to, 1);
	INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (NEW.kind, NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_to, 0);
END;
CREATE TRIGGER integrations_deleted AFTER DELETE ON integrations BEGIN
	INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (OLD.kind, OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_to, 1);
END;

-- One row: the version of the registers (participants, services,
-- authorisations). Apply compares and bumps it in its transaction.
CREATE TABLE register_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL CHECK (version > 0)
) STRICT;
INSERT INTO register_version(id, version) VALUES (1, 1);

-- The history of the person directory: one row per change, the
-- integration as it is after it. Never pruned with the change feed.
CREATE TABLE integration_history (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	action      TEXT NOT NULL CHECK (action IN ('register', 'end', 'correct')),
	kind        TEXT NOT NULL,
	person      TEXT NOT NULL,
	participant TEXT NOT NULL,
	sector      TEXT NOT NULL,
	capacity    TEXT NOT NULL,
	valid_from  TEXT NOT NULL,
	valid_to    TEXT,
	actor       TEXT NOT NULL DEFAULT '', -- the participant who made the change; '' for an apply
	user_name   TEXT NOT NULL DEFAULT '', -- the natural person acting
	at          TEXT NOT NULL
) STRICT;
CREATE INDEX integration_history_person ON integration_history(person, seq);
CREATE INDEX integration_history_participant ON integration_history(participant, seq);
