-- The change feed of the person directory: every insert, update and delete
-- of an integration, in commit order (SQLite has one writer), written by
-- triggers so that no write path can forget it. Hub nodes sharing the
-- registers read it to follow each other's writes; it is pruned after a
-- while (a node that fell further behind reloads the directory whole).
CREATE TABLE integration_changes (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	person      TEXT NOT NULL,
	participant TEXT NOT NULL,
	sector      TEXT NOT NULL,
	capacity    TEXT NOT NULL,
	valid_from  TEXT NOT NULL,
	valid_to    TEXT,
	deleted     INTEGER NOT NULL,
	at          INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)) -- Unix seconds, for pruning
);
CREATE TRIGGER integrations_inserted AFTER INSERT ON integrations BEGIN
	INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_to, 0);
END;
CREATE TRIGGER integrations_updated AFTER UPDATE ON integrations BEGIN
	INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_to, 1);
	INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (NEW.person, NEW.participant, NEW.sector, NEW.capacity, NEW.valid_from, NEW.valid_to, 0);
END;
CREATE TRIGGER integrations_deleted AFTER DELETE ON integrations BEGIN
	INSERT INTO integration_changes(person, participant, sector, capacity, valid_from, valid_to, deleted)
	VALUES (OLD.person, OLD.participant, OLD.sector, OLD.capacity, OLD.valid_from, OLD.valid_to, 1);
END;
