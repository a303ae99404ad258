-- Secure processing (issue 14): one workspace per data permit, the
-- uploads completed into it, the queries run in it and what became of
-- their results, the reviewers' decisions and the privacy budget spent.
-- Contents (datasets, results, the checker's cells) are not here: they
-- are sealed in the workspace's directory under its own key.
CREATE TABLE spe_workspaces (
	permit  text PRIMARY KEY CHECK (permit <> ''),
	state   text NOT NULL CHECK (state IN ('open', 'halted', 'terminated')),
	reason  text NOT NULL DEFAULT '',
	actor   text NOT NULL DEFAULT '',
	created text NOT NULL,
	changed text NOT NULL
);

CREATE TABLE spe_uploads (
	permit   text NOT NULL REFERENCES spe_workspaces(permit),
	id       text NOT NULL,
	dataset  text NOT NULL,
	holder   text NOT NULL,
	user_id  text NOT NULL,
	filename text NOT NULL DEFAULT '',
	type     text NOT NULL,
	size     bigint NOT NULL CHECK (size >= 0),
	sha256   text NOT NULL,
	at       text NOT NULL,
	PRIMARY KEY (permit, id)
);

CREATE TABLE spe_releases (
	permit    text NOT NULL REFERENCES spe_workspaces(permit),
	id        text NOT NULL,
	requester text NOT NULL,
	query     text NOT NULL,
	status    text NOT NULL,
	noisy     boolean NOT NULL DEFAULT false,
	federated boolean NOT NULL DEFAULT false,
	created   text NOT NULL,
	decided   text, -- RFC 3339 with nanoseconds, as every time of this schema
	PRIMARY KEY (permit, id)
);

CREATE TABLE spe_reviews (
	permit   text NOT NULL,
	release  text NOT NULL,
	reviewer text NOT NULL,
	decision text NOT NULL CHECK (decision IN ('approve', 'reject')),
	note     text NOT NULL DEFAULT '',
	at       text NOT NULL,
	seq      bigint NOT NULL,
	PRIMARY KEY (permit, release, reviewer),
	FOREIGN KEY (permit, release) REFERENCES spe_releases(permit, id)
);

CREATE TABLE spe_budget (
	permit  text PRIMARY KEY,
	epsilon double precision NOT NULL CHECK (epsilon >= 0),
	delta   double precision NOT NULL CHECK (delta >= 0)
);
