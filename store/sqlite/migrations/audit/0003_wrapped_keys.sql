-- The key hierarchy's secrets (blind-index key, log note key, hub TLS key),
-- each stored only wrapped under a key of the keys.Provider (see package
-- keys). Several versions of a kind during a rotation; the highest is
-- current.
CREATE TABLE wrapped_keys (
	kind         TEXT NOT NULL,
	version      INTEGER NOT NULL,
	provider_key TEXT NOT NULL,   -- id of the provider key that wraps it
	wrapped      BLOB NOT NULL,
	public       TEXT NOT NULL DEFAULT '', -- public part (verifier key, certificate)
	created      INTEGER NOT NULL, -- Unix microseconds
	PRIMARY KEY (kind, version)
);
