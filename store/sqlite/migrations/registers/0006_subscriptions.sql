-- The subscription table (issue 10, seed 001): which participant wants to
-- receive which mutation of a service, for the persons it holds a file on
-- in which capacities, for which purpose, delivered how.
CREATE TABLE subscriptions (
	id         TEXT PRIMARY KEY CHECK (id <> ''),
	subscriber TEXT NOT NULL REFERENCES participants(id),
	service    TEXT NOT NULL REFERENCES services(id),
	operation  TEXT NOT NULL,
	purpose    TEXT NOT NULL,
	capacities TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(capacities)), -- JSON array of {sector, code, kind}
	delivery   TEXT NOT NULL CHECK (delivery IN ('push', 'pull')),
	endpoint   TEXT NOT NULL DEFAULT '',
	status     TEXT NOT NULL
) STRICT;
CREATE INDEX subscriptions_subscriber ON subscriptions(subscriber);
