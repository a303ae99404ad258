-- The key hierarchy's secrets (blind-index key, log note key, hub TLS key),
-- each stored only wrapped under a key of the keys.Provider (see package
-- keys), shared by every node. Several versions of a kind during a
-- rotation; the highest is current.
CREATE TABLE wrapped_keys (
	kind         text COLLATE "C" NOT NULL,
	version      integer NOT NULL,
	provider_key text NOT NULL,    -- id of the provider key that wraps it
	wrapped      bytea NOT NULL,
	public       text NOT NULL DEFAULT '', -- public part (verifier key, certificate)
	created      timestamptz NOT NULL,
	PRIMARY KEY (kind, version)
);
