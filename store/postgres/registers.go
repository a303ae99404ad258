package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
)

// Registers is the PostgreSQL register store: participants, services,
// authorisations, the person directory and issued certificates. It
// implements crossroads.RegisterStore and crossroads.CertificateStore and
// is safe for concurrent use, by several processes too.
//
// Beyond the interface, the database keeps references intact: a service's
// provider, an authorisation's grantee and services, and an integration's
// participant must exist (in the store or earlier in the same Apply), and
// an integration's or authorisation's end must lie after its start.
// Violations fail with an error wrapping crossroads.ErrInvalid.
type Registers struct {
	pool *pgxpool.Pool
}

var (
	_ crossroads.RegisterStore    = (*Registers)(nil)
	_ crossroads.CertificateStore = (*Registers)(nil)
)

// OpenRegisters connects to the database at dsn and applies the register
// migrations it lacks.
func OpenRegisters(ctx context.Context, dsn string) (*Registers, error) {
	pool, err := openPool(ctx, dsn, "registers")
	if err != nil {
		return nil, err
	}
	return &Registers{pool: pool}, nil
}

// Close closes the connections. Closing again is a no-op.
func (s *Registers) Close() error {
	s.pool.Close()
	return nil
}

// Registers implements crossroads.RegisterStore: every participant, service
// and authorisation, each list sorted by id, read in one snapshot.
func (s *Registers) Registers(ctx context.Context) (*crossroads.Network, error) {
	n := &crossroads.Network{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&n.Version); err != nil {
			return fmt.Errorf("version: %w", err)
		}
		var err error
		if n.Participants, err = readParticipants(ctx, tx); err != nil {
			return fmt.Errorf("participants: %w", err)
		}
		if n.Services, err = readServices(ctx, tx); err != nil {
			return fmt.Errorf("services: %w", err)
		}
		if n.Authorisations, err = readAuthorisations(ctx, tx); err != nil {
			return fmt.Errorf("authorisations: %w", err)
		}
		if err := readPermits(ctx, tx, n.Authorisations); err != nil {
			return err
		}
		if n.Subscriptions, err = readSubscriptions(ctx, tx); err != nil { // subscriptions.go
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	return n, nil
}

func readParticipants(ctx context.Context, tx pgx.Tx) ([]crossroads.Participant, error) {
	rows, _ := tx.Query(ctx, `SELECT id, name, kind, status, incident_contact, enterprise, country FROM participants ORDER BY id`)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.Participant, error) {
		var p crossroads.Participant
		err := r.Scan(&p.ID, &p.Name, &p.Kind, &p.Status, &p.IncidentContact, &p.Enterprise, &p.Country)
		return p, err
	})
}

func readServices(ctx context.Context, tx pgx.Tx) ([]crossroads.Service, error) {
	rows, _ := tx.Query(ctx, `SELECT id, provider, base_url, description, classification, fields, concerns_person, subject, operations
		FROM services ORDER BY id`)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.Service, error) {
		var (
			sv  crossroads.Service
			ops []byte
		)
		if err := r.Scan(&sv.ID, &sv.Provider, &sv.BaseURL, &sv.Description, &sv.Classification, &sv.Fields, &sv.ConcernsPerson,
			&sv.Subject, &ops); err != nil {
			return sv, err
		}
		sv.Fields = nilIfEmpty(sv.Fields)
		if err := json.Unmarshal(ops, &sv.Operations); err != nil {
			return sv, fmt.Errorf("service %s operations: %w", sv.ID, err)
		}
		return sv, nil
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func readAuthorisations(ctx context.Context, tx pgx.Tx) ([]crossroads.Authorisation, error) {
	rows, _ := tx.Query(ctx, `SELECT id, reference, grantee, purposes, fields, capacities, valid_from, valid_from_ns,
		valid_to, valid_to_ns, status, has_limits, limit_rate, limit_burst, limit_max_concurrent, operations,
		ARRAY(SELECT service FROM authorisation_services s WHERE s.authorisation = a.id ORDER BY position)
		FROM authorisations a ORDER BY id`)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.Authorisation, error) {
		var (
			a              crossroads.Authorisation
			fields, caps   []byte
			ops            []byte
			vf             time.Time
			vfNS           int16
			vt             *time.Time
			vtNS           *int16
			hasLimits      bool
			l              crossroads.Limits
			services       []string
			purposes       []string
			rate           float64
			burst, maxConc int
		)
		if err := r.Scan(&a.ID, &a.Reference, &a.Grantee, &purposes, &fields, &caps, &vf, &vfNS, &vt, &vtNS,
			&a.Status, &hasLimits, &rate, &burst, &maxConc, &ops, &services); err != nil {
			return a, err
		}
		if err := errors.Join(json.Unmarshal(fields, &a.Fields), json.Unmarshal(caps, &a.Capacities),
			json.Unmarshal(ops, &a.Operations)); err != nil {
			return a, fmt.Errorf("authorisation %s: %w", a.ID, err)
		}
		a.Purposes, a.Services = nilIfEmpty(purposes), nilIfEmpty(services)
		a.ValidFrom, a.ValidTo = joinTime(vf, vfNS), joinOptTime(vt, vtNS)
		if hasLimits {
			l.RatePerSecond, l.Burst, l.MaxConcurrent = rate, burst, maxConc
			a.Limits = &l
		}
		return a, nil
	})
}

// Apply implements crossroads.RegisterStore. Entries are written in the
// order participants, services, authorisations, integrations, so that a
// batch may refer to entries it creates itself; among entries with the same
// key, the last one wins.
func (s *Registers) Apply(ctx context.Context, n *crossroads.Network) error {
	if n == nil {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkVersion(ctx, tx, n.Version, len(n.Participants)+len(n.Services)+len(n.Authorisations)+len(n.Subscriptions) > 0); err != nil {
			return err
		}
		for _, p := range n.Participants {
			if err := putParticipant(ctx, tx, p); err != nil {
				return fmt.Errorf("participant %q: %w", p.ID, classify(err))
			}
		}
		for _, sv := range n.Services {
			if err := putService(ctx, tx, sv); err != nil {
				return fmt.Errorf("service %q: %w", sv.ID, classify(err))
			}
		}
		for _, a := range n.Authorisations {
			if err := putAuthorisation(ctx, tx, a); err != nil {
				return fmt.Errorf("authorisation %q: %w", a.ID, classify(err))
			}
		}
		if err := putPermits(ctx, tx, n.Authorisations); err != nil {
			return err
		}
		if err := putSubscriptions(ctx, tx, n.Subscriptions); err != nil { // subscriptions.go
			return err
		}
		if err := putIntegrations(ctx, tx, n.Integrations); err != nil {
			return fmt.Errorf("integrations: %w", classify(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// checkVersion locks the registers' version — exclusively if bump (an
// apply that changes the registers), shared otherwise (a write validated
// against them) — compares it with want (0: no precondition) and, if bump,
// increments it. Under READ COMMITTED the locking read sees the version
// committed by a concurrent apply it waited for.
func checkVersion(ctx context.Context, tx pgx.Tx, want int64, bump bool) error {
	q := `SELECT version FROM register_version WHERE id = 1 FOR SHARE`
	if bump {
		q = `SELECT version FROM register_version WHERE id = 1 FOR UPDATE`
	}
	var v int64
	if err := tx.QueryRow(ctx, q).Scan(&v); err != nil {
		return fmt.Errorf("register version: %w", err)
	}
	if want != 0 && v != want {
		return fmt.Errorf("%w: at version %d, not %d", crossroads.ErrStale, v, want)
	}
	if bump {
		if _, err := tx.Exec(ctx, `UPDATE register_version SET version = version + 1 WHERE id = 1`); err != nil {
			return fmt.Errorf("register version: %w", err)
		}
	}
	return nil
}

// encKind stores a person's kind as "person" (the empty kind means the
// same); decKind gives it back as the empty kind, the canonical form.
func encKind(k string) string {
	if k == "" {
		return crossroads.SubjectPerson
	}
	return k
}

func decKind(k string) string {
	if k == crossroads.SubjectPerson {
		return ""
	}
	return k
}

func putParticipant(ctx context.Context, tx pgx.Tx, p crossroads.Participant) error {
	_, err := tx.Exec(ctx, `INSERT INTO participants(id, name, kind, status, incident_contact, enterprise, country) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, status = excluded.status,
		incident_contact = excluded.incident_contact, enterprise = excluded.enterprise, country = excluded.country`,
		p.ID, p.Name, p.Kind, p.Status, p.IncidentContact, p.Enterprise, p.Country)
	return err
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func putService(ctx context.Context, tx pgx.Tx, sv crossroads.Service) error {
	ops, err := json.Marshal(sv.Operations)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO services(id, provider, base_url, description, classification, fields, concerns_person,
		subject, operations) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT(id) DO UPDATE SET provider = excluded.provider, base_url = excluded.base_url,
		description = excluded.description, classification = excluded.classification, fields = excluded.fields,
		concerns_person = excluded.concerns_person, subject = excluded.subject, operations = excluded.operations`,
		sv.ID, sv.Provider, sv.BaseURL, sv.Description, sv.Classification, emptyIfNil(sv.Fields), sv.ConcernsPerson,
		sv.Subject, string(ops))
	return err
}

func putAuthorisation(ctx context.Context, tx pgx.Tx, a crossroads.Authorisation) error {
	for svc := range a.Fields {
		found := false
		for _, s := range a.Services {
			found = found || s == svc
		}
		if !found {
			return fmt.Errorf("%w: fields granted for service %q, which the authorisation does not name", crossroads.ErrInvalid, svc)
		}
	}
	fields, err1 := json.Marshal(a.Fields)
	caps, err2 := json.Marshal(a.Capacities)
	ops, err3 := json.Marshal(a.Operations)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	vf, vfNS := splitTime(a.ValidFrom)
	vt, vtNS := splitOptTime(a.ValidTo)
	var l crossroads.Limits
	if a.Limits != nil {
		l = *a.Limits
	}
	if _, err := tx.Exec(ctx, `INSERT INTO authorisations(id, reference, grantee, purposes, fields, capacities,
		valid_from, valid_from_ns, valid_to, valid_to_ns, status, has_limits, limit_rate, limit_burst, limit_max_concurrent, operations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT(id) DO UPDATE SET reference = excluded.reference, grantee = excluded.grantee, purposes = excluded.purposes,
		fields = excluded.fields, capacities = excluded.capacities, valid_from = excluded.valid_from,
		valid_from_ns = excluded.valid_from_ns, valid_to = excluded.valid_to, valid_to_ns = excluded.valid_to_ns,
		status = excluded.status, has_limits = excluded.has_limits, limit_rate = excluded.limit_rate,
		limit_burst = excluded.limit_burst, limit_max_concurrent = excluded.limit_max_concurrent, operations = excluded.operations`,
		a.ID, a.Reference, a.Grantee, emptyIfNil(a.Purposes), string(fields), string(caps), vf, vfNS, vt, vtNS, a.Status,
		a.Limits != nil, l.RatePerSecond, l.Burst, l.MaxConcurrent, string(ops)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM authorisation_services WHERE authorisation = $1`, a.ID); err != nil {
		return err
	}
	if len(a.Services) > 0 {
		_, err := tx.Exec(ctx, `INSERT INTO authorisation_services(authorisation, position, service)
			SELECT $1, o - 1, s FROM unnest($2::text[]) WITH ORDINALITY AS u(s, o)`, a.ID, a.Services)
		return err
	}
	return nil
}

// integrationChunk bounds the rows of one multi-row upsert.
const integrationChunk = 5000

// putIntegrationsSQL upserts integrations and records in the history, as
// a registration or a correction, each that it inserted or changed.
const putIntegrationsSQL = `WITH up AS (
	INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, kind)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::smallint[], $7::timestamptz[], $8::smallint[], $9::text[])
	ON CONFLICT(person, participant, sector, capacity, valid_from, valid_from_ns, kind)
	DO UPDATE SET valid_to = excluded.valid_to, valid_to_ns = excluded.valid_to_ns
	WHERE (integrations.valid_to, integrations.valid_to_ns) IS DISTINCT FROM (excluded.valid_to, excluded.valid_to_ns)
	RETURNING person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, kind, (xmax = 0) AS inserted)
INSERT INTO integration_history(action, kind, person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, at, at_ns)
	SELECT CASE WHEN inserted THEN 'register' ELSE 'correct' END, kind, person, participant, sector, capacity,
	valid_from, valid_from_ns, valid_to, valid_to_ns, $10, $11 FROM up`

type integrationKey struct {
	kind, person, participant, sector, capacity string
	from                                        time.Time
	fromNS                                      int16
}

// putIntegrations upserts ins with multi-row statements. One statement
// may not update a row twice, so only the last entry of each key is sent.
func putIntegrations(ctx context.Context, tx pgx.Tx, ins []crossroads.Integration) error {
	if len(ins) == 0 {
		return nil
	}
	// The feed's lock (which its trigger would take only at the end of the
	// statement) is taken first, so that history numbers, drawn inside the
	// statement, follow commit order like the feed's: an auditor paging by
	// seq never skips a late commit.
	if _, err := tx.Exec(ctx, `LOCK TABLE integration_changes IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return err
	}
	last := make(map[integrationKey]int, len(ins))
	keys := make([]integrationKey, len(ins))
	for i, in := range ins {
		from, ns := splitTime(in.From)
		keys[i] = integrationKey{encKind(in.Kind), in.Person, in.Participant, in.Sector, in.Capacity, from, ns}
		last[keys[i]] = i
	}
	var (
		persons, parts, sectors, caps []string
		kinds                         []string
		froms                         []time.Time
		fromNS                        []int16
		tos                           []*time.Time
		toNS                          []*int16
	)
	at, atNS := splitTime(time.Now())
	flush := func() error {
		if len(persons) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, putIntegrationsSQL, persons, parts, sectors, caps, froms, fromNS, tos, toNS, kinds, at, atNS)
		persons, parts, sectors, caps, kinds = persons[:0], parts[:0], sectors[:0], caps[:0], kinds[:0]
		froms, fromNS, tos, toNS = froms[:0], fromNS[:0], tos[:0], toNS[:0]
		return err
	}
	for i, in := range ins {
		k := keys[i]
		if last[k] != i {
			continue
		}
		to, tns := splitOptTime(in.To)
		persons, parts, sectors, caps = append(persons, k.person), append(parts, k.participant), append(sectors, k.sector), append(caps, k.capacity)
		froms, fromNS, tos, toNS = append(froms, k.from), append(fromNS, k.fromNS), append(tos, to), append(toNS, tns)
		kinds = append(kinds, k.kind)
		if len(persons) == integrationChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// PutIntegration implements crossroads.RegisterStore.
func (s *Registers) PutIntegration(ctx context.Context, in crossroads.Integration) error {
	from, fromNS := splitTime(in.From)
	to, toNS := splitOptTime(in.To)
	if _, err := s.pool.Exec(ctx, `INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT(person, participant, sector, capacity, valid_from, valid_from_ns, kind)
		DO UPDATE SET valid_to = excluded.valid_to, valid_to_ns = excluded.valid_to_ns`,
		in.Person, in.Participant, in.Sector, in.Capacity, from, fromNS, to, toNS, encKind(in.Kind)); err != nil {
		return fmt.Errorf("put integration of %q: %w", in.Participant, classify(err))
	}
	return nil
}

// DeleteIntegration implements crossroads.RegisterStore. Only the key
// (person, participant, sector, capacity, from) is used.
func (s *Registers) DeleteIntegration(ctx context.Context, in crossroads.Integration) error {
	from, fromNS := splitTime(in.From)
	tag, err := s.pool.Exec(ctx, `DELETE FROM integrations WHERE person = $1 AND participant = $2 AND sector = $3
		AND capacity = $4 AND valid_from = $5 AND valid_from_ns = $6 AND kind = $7`,
		in.Person, in.Participant, in.Sector, in.Capacity, from, fromNS, encKind(in.Kind))
	if err != nil {
		return fmt.Errorf("delete integration of %q: %w", in.Participant, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete integration of %q: %w", in.Participant, crossroads.ErrNotFound)
	}
	return nil
}

const (
	integrationColumns = `SELECT person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, kind FROM integrations`
	integrationOrder   = ` ORDER BY person, participant, sector, capacity, valid_from, valid_from_ns, kind`
)

// integrationQueries are indexed by filter: none, person, participant, both.
var integrationQueries = [4]string{
	integrationColumns + integrationOrder,
	integrationColumns + ` WHERE person = $1` + integrationOrder,
	integrationColumns + ` WHERE participant = $1` + integrationOrder,
	integrationColumns + ` WHERE person = $1 AND participant = $2` + integrationOrder,
}

// Integrations implements crossroads.RegisterStore, ordered by person,
// participant, sector, capacity, start and kind.
func (s *Registers) Integrations(ctx context.Context, participant, person string) ([]crossroads.Integration, error) {
	var out []crossroads.Integration
	if err := s.eachIntegration(ctx, participant, person, func(in crossroads.Integration) error {
		out = append(out, in)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("integrations: %w", err)
	}
	return out, nil
}

// EachIntegration implements crossroads.RegisterStore. Rows stream from
// one query (one snapshot) on one pooled connection; fn may call the store,
// whose other calls use other connections. An error from fn or the end of
// ctx stops the stream and is returned wrapped.
func (s *Registers) EachIntegration(ctx context.Context, fn func(crossroads.Integration) error) error {
	if err := s.eachIntegration(ctx, "", "", fn); err != nil {
		return fmt.Errorf("each integration: %w", err)
	}
	return nil
}

func (s *Registers) eachIntegration(ctx context.Context, participant, person string, fn func(crossroads.Integration) error) error {
	var args []any
	i := 0
	if person != "" {
		i |= 1
		args = append(args, person)
	}
	if participant != "" {
		i |= 2
		args = append(args, participant)
	}
	rows, err := s.pool.Query(ctx, integrationQueries[i], args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		in     crossroads.Integration
		from   time.Time
		fromNS int16
		to     *time.Time
		toNS   *int16
	)
	scan := []any{&in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &fromNS, &to, &toNS, &in.Kind}
	for rows.Next() {
		if err := rows.Scan(scan...); err != nil {
			return err
		}
		in.Kind = decKind(in.Kind)
		in.From, in.To = joinTime(from, fromNS), joinOptTime(to, toNS)
		if err := fn(in); err != nil {
			return err
		}
		// Rows already buffered would otherwise be delivered after a cancel.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return rows.Err()
}
