-- The subscription table (issue 10, seed 001): which participant wants to
-- receive which mutation of a service, for the persons it holds a file on
-- in which capacities, for which purpose, delivered how.
CREATE TABLE subscriptions (
	id         text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	subscriber text COLLATE "C" NOT NULL REFERENCES participants(id),
	service    text COLLATE "C" NOT NULL REFERENCES services(id),
	operation  text NOT NULL,
	purpose    text NOT NULL,
	capacities jsonb NOT NULL DEFAULT 'null',
	delivery   text NOT NULL CHECK (delivery IN ('push', 'pull')),
	endpoint   text NOT NULL DEFAULT '',
	status     text NOT NULL
);
CREATE INDEX subscriptions_subscriber ON subscriptions(subscriber);
