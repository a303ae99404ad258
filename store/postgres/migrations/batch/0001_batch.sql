-- Batch consultation (issue 10 item 4): submitted batches and their items,
-- shared by every node. Times are Unix microseconds (UTC). An item is
-- claimable when it is pending and its lease has run out (claims take
-- FOR UPDATE SKIP LOCKED, so nodes claim disjoint items); a held batch's
-- items carry the largest lease until the submission is recorded. A result
-- is written in the same transaction that ends the item's claim.
CREATE TABLE batches (
	id          text COLLATE "C" PRIMARY KEY,
	participant text COLLATE "C" NOT NULL,
	user_name   text NOT NULL DEFAULT '',
	serial      text NOT NULL,
	certificate bytea NOT NULL,
	state       text NOT NULL CHECK (state IN ('held', 'running', 'done', 'expired')),
	created     bigint NOT NULL,
	finished    bigint NOT NULL DEFAULT 0,
	expires     bigint NOT NULL DEFAULT 0,
	retention   bigint NOT NULL,
	total       integer NOT NULL,
	done        integer NOT NULL DEFAULT 0,
	allowed     integer NOT NULL DEFAULT 0,
	denied      integer NOT NULL DEFAULT 0,
	failed      integer NOT NULL DEFAULT 0
);
CREATE INDEX batches_state_expires ON batches(state, expires);

CREATE TABLE batch_items (
	batch       text COLLATE "C" NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
	seq         integer NOT NULL,
	participant text COLLATE "C" NOT NULL,
	item        bytea NOT NULL,
	state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
	lease_until bigint NOT NULL,
	token       text NOT NULL DEFAULT '',
	attempts    integer NOT NULL DEFAULT 0,
	result      bytea,
	released    bytea,
	PRIMARY KEY (batch, seq)
);
CREATE INDEX batch_items_claim ON batch_items(participant, lease_until) WHERE state = 'pending';
