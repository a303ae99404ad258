-- Mutation push (issue 10): publications, the outbox (one entry per
-- publication and eligible subscription) and the pull feeds' cursors,
-- shared by every hub node. Times are Unix nanoseconds (exact round trip).
CREATE TABLE push_publications (
	id           text COLLATE "C" PRIMARY KEY,
	publisher    text COLLATE "C" NOT NULL,
	service      text COLLATE "C" NOT NULL,
	operation    text COLLATE "C" NOT NULL,
	idem_key     text COLLATE "C" NOT NULL,
	digest       text NOT NULL,
	subject_kind text NOT NULL,
	subject      text COLLATE "C" NOT NULL,
	effective    bigint NOT NULL,
	payload      bytea NOT NULL,
	routed       integer NOT NULL,
	created_at   bigint NOT NULL,
	UNIQUE (service, publisher, idem_key)
);

CREATE TABLE push_outbox (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	publication  text COLLATE "C" NOT NULL REFERENCES push_publications(id),
	subscription text COLLATE "C" NOT NULL,
	subscriber   text COLLATE "C" NOT NULL,
	queue        text COLLATE "C" NOT NULL,
	delivery     text NOT NULL CHECK (delivery IN ('push', 'pull')),
	state        text NOT NULL CHECK (state IN ('pending', 'available', 'delivered', 'dead', 'dropped')),
	attempts     integer NOT NULL DEFAULT 0,
	next_at      bigint NOT NULL,
	since        bigint NOT NULL,
	lease_owner  text,
	lease_until  bigint,
	body         bytea,
	seal         text NOT NULL DEFAULT '',
	receipt      text NOT NULL DEFAULT '',
	exchange_id  text NOT NULL DEFAULT '',
	last_error   text NOT NULL DEFAULT '',
	delivered_at bigint
);
CREATE INDEX push_outbox_pending_queue ON push_outbox(queue, seq) WHERE state = 'pending';
CREATE INDEX push_outbox_pending_due ON push_outbox(next_at, seq) WHERE state = 'pending';
CREATE INDEX push_outbox_subscription ON push_outbox(subscription, seq);

CREATE TABLE push_cursors (
	subscription text COLLATE "C" PRIMARY KEY,
	acked        bigint NOT NULL
);
