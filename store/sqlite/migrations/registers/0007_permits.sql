-- Data permits (issue 14, seed 002 EHDSR-1): an authorisation of kind
-- 'data-permit' has one row here with its terms (crossroads.Permit as
-- JSON: access body, datasets, members and roles, statistics, software,
-- disclosure-control rules, privacy budget, upload rules, peers). An
-- authorisation without a row is a deliberation (kind '').
CREATE TABLE permits (
	authorisation TEXT PRIMARY KEY REFERENCES authorisations(id) ON DELETE CASCADE,
	kind          TEXT NOT NULL CHECK (kind <> ''),
	terms         TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(terms))
) STRICT, WITHOUT ROWID;
