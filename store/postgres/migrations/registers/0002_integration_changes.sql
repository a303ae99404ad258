-- The change feed of the person directory: every insert, update and delete
-- of an integration, written by a trigger so that no write path can forget
-- it. Hub nodes sharing the registers read it to follow each other's writes.
--
-- Sequence numbers must follow commit order, or a reader could pass over a
-- change committed late with a smaller number: the trigger takes a lock on
-- the feed, held until commit, before it draws a number (readers do not
-- wait for it).
CREATE TABLE integration_changes (
	seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	person        text COLLATE "C" NOT NULL,
	participant   text COLLATE "C" NOT NULL,
	sector        text COLLATE "C" NOT NULL,
	capacity      text COLLATE "C" NOT NULL,
	valid_from    timestamptz NOT NULL,
	valid_from_ns smallint NOT NULL,
	valid_to      timestamptz,
	valid_to_ns   smallint,
	deleted       boolean NOT NULL,
	at            timestamptz NOT NULL DEFAULT now() -- for pruning
);

CREATE FUNCTION integration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	LOCK TABLE integration_changes IN SHARE ROW EXCLUSIVE MODE;
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, deleted)
		VALUES (OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_from_ns, OLD.valid_to, OLD.valid_to_ns, true);
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, deleted)
		VALUES (NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_from_ns, NEW.valid_to, NEW.valid_to_ns, false);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER integrations_changed AFTER INSERT OR UPDATE OR DELETE ON integrations
	FOR EACH ROW EXECUTE FUNCTION integration_changed();
