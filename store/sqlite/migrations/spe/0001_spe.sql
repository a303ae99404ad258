-- Secure processing (issue 14): one workspace per data permit, the
-- uploads completed into it, the queries run in it and what became of
-- their results, the reviewers' decisions and the privacy budget spent.
-- Contents (datasets, results, the checker's cells) are not here: they
-- are sealed in the workspace's directory under its own key.
CREATE TABLE spe_workspaces (
	permit  TEXT PRIMARY KEY CHECK (permit <> ''),
	state   TEXT NOT NULL CHECK (state IN ('open', 'halted', 'terminated')),
	reason  TEXT NOT NULL DEFAULT '',
	actor   TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	changed TEXT NOT NULL
) STRICT;

CREATE TABLE spe_uploads (
	permit   TEXT NOT NULL REFERENCES spe_workspaces(permit),
	id       TEXT NOT NULL,
	dataset  TEXT NOT NULL,
	holder   TEXT NOT NULL,
	user_id  TEXT NOT NULL,
	filename TEXT NOT NULL DEFAULT '',
	type     TEXT NOT NULL,
	size     INTEGER NOT NULL CHECK (size >= 0),
	sha256   TEXT NOT NULL,
	at       TEXT NOT NULL,
	PRIMARY KEY (permit, id)
) STRICT;

CREATE TABLE spe_releases (
	permit    TEXT NOT NULL REFERENCES spe_workspaces(permit),
	id        TEXT NOT NULL,
	requester TEXT NOT NULL,
	query     TEXT NOT NULL CHECK (json_valid(query)),
	status    TEXT NOT NULL,
	noisy     INTEGER NOT NULL DEFAULT 0,
	federated INTEGER NOT NULL DEFAULT 0,
	created   TEXT NOT NULL,
	decided   TEXT,
	PRIMARY KEY (permit, id)
) STRICT;

CREATE TABLE spe_reviews (
	permit   TEXT NOT NULL,
	release  TEXT NOT NULL,
	reviewer TEXT NOT NULL,
	decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
	note     TEXT NOT NULL DEFAULT '',
	at       TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	PRIMARY KEY (permit, release, reviewer),
	FOREIGN KEY (permit, release) REFERENCES spe_releases(permit, id)
) STRICT;

CREATE TABLE spe_budget (
	permit  TEXT PRIMARY KEY,
	epsilon REAL NOT NULL CHECK (epsilon >= 0),
	delta   REAL NOT NULL CHECK (delta >= 0)
) STRICT;
