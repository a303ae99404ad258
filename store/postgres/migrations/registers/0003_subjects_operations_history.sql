-- Wave 2 of the registers (issues 8, 15, 16):
--   * services name the kind of their subject and declare operations;
--     authorisations grant operations (jsonb, owned by the row);
--   * integrations name the kind of their subject (person, enterprise, …),
--     which joins their key; the change feed carries it;
--   * the registers carry a version, bumped by every apply that writes a
--     participant, service or authorisation (optimistic concurrency);
--   * the person directory keeps its history: every register, end and
--     correction, by whom, never pruned (no hard delete through the API).

ALTER TABLE services ADD COLUMN subject text NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN operations jsonb NOT NULL DEFAULT 'null'; -- array of operations
ALTER TABLE authorisations ADD COLUMN operations jsonb NOT NULL DEFAULT 'null'; -- object: service -> operation ids

ALTER TABLE integrations ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'person' CHECK (kind <> '');
ALTER TABLE integrations DROP CONSTRAINT integrations_pkey;
ALTER TABLE integrations ADD PRIMARY KEY (person, participant, sector, capacity, valid_from, valid_from_ns, kind);

ALTER TABLE integration_changes ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'person';
CREATE OR REPLACE FUNCTION integration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	LOCK TABLE integration_changes IN SHARE ROW EXCLUSIVE MODE;
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, deleted)
		VALUES (OLD.kind, OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_from_ns, OLD.valid_to, OLD.valid_to_ns, true);
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO integration_changes(kind, person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, deleted)
		VALUES (NEW.kind, NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_from_ns, NEW.valid_to, NEW.valid_to_ns, false);
	END IF;
	RETURN NULL;
END
$$;

-- One row: the version of the registers (participants, services,
-- authorisations). Apply locks, compares and bumps it in its transaction;
-- integration writes hold it FOR SHARE, so that none commits against a
-- version an apply has replaced.
CREATE TABLE register_version (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint NOT NULL CHECK (version > 0)
);
INSERT INTO register_version(id, version) VALUES (1, 1);

-- The history of the person directory: one row per change, the
-- integration as it is after it. Never pruned with the change feed. Its
-- rows are written under the feed's lock, so seq follows commit order.
CREATE TABLE integration_history (
	seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	action        text NOT NULL CHECK (action IN ('register', 'end', 'correct')),
	kind          text COLLATE "C" NOT NULL,
	person        text COLLATE "C" NOT NULL,
	participant   text COLLATE "C" NOT NULL,
	sector        text COLLATE "C" NOT NULL,
	capacity      text COLLATE "C" NOT NULL,
	valid_from    timestamptz NOT NULL,
	valid_from_ns smallint NOT NULL,
	valid_to      timestamptz,
	valid_to_ns   smallint,
	actor         text NOT NULL DEFAULT '', -- the participant who made the change; '' for an apply
	user_name     text NOT NULL DEFAULT '', -- the natural person acting
	at            timestamptz NOT NULL,
	at_ns         smallint NOT NULL
);
CREATE INDEX integration_history_person ON integration_history(person, seq);
CREATE INDEX integration_history_participant ON integration_history(participant, seq);
