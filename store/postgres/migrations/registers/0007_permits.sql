-- Data permits (issue 14, seed 002 EHDSR-1): an authorisation of kind
-- 'data-permit' has one row here with its terms (crossroads.Permit as
-- JSON text, kept as written). An authorisation without a row is a
-- deliberation (kind '').
CREATE TABLE permits (
	authorisation text COLLATE "C" PRIMARY KEY REFERENCES authorisations(id) ON DELETE CASCADE,
	kind          text NOT NULL CHECK (kind <> ''),
	terms         text NOT NULL DEFAULT 'null'
);
