package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Registers is the embedded register store: participants, services,
// authorisations, the person directory and issued certificates, in one
// SQLite database. It implements crossroads.RegisterStore and
// crossroads.CertificateStore. It is safe for concurrent use.
//
// Beyond the interface, the database keeps references intact: a service's
// provider, an authorisation's grantee and services, and an integration's
// participant must exist (in the store or earlier in the same Apply), and
// an integration's or authorisation's end must lie after its start.
// Violations fail with an error wrapping crossroads.ErrInvalid.
type Registers struct {
	c *conn
	// lookups are the integration queries prepared on the read pool,
	// indexed by filter: none, person, participant, both.
	lookups   [4]*sql.Stmt
	closeOnce sync.Once
	closeErr  error
}

var (
	_ crossroads.RegisterStore    = (*Registers)(nil)
	_ crossroads.CertificateStore = (*Registers)(nil)
)

// OpenRegisters opens, creating and migrating if needed, the registers
// database at file.
func OpenRegisters(ctx context.Context, file string) (*Registers, error) {
	c, err := openDB(ctx, file, "registers")
	if err != nil {
		return nil, err
	}
	s := &Registers{c: c}
	for i, where := range []string{"", ` WHERE person = ?`, ` WHERE participant = ?`, ` WHERE person = ? AND participant = ?`} {
		if s.lookups[i], err = c.r.PrepareContext(ctx, integrationColumns+where+integrationOrder); err != nil {
			c.close()
			return nil, fmt.Errorf("open registers %s: prepare: %w", file, err)
		}
	}
	return s, nil
}

// Close closes the database. Closing again is a no-op.
func (s *Registers) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, st := range s.lookups {
			errs = append(errs, st.Close())
		}
		s.closeErr = errors.Join(append(errs, s.c.close())...)
	})
	return s.closeErr
}

// timeLayout is fixed-width so that stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// encTime encodes t in UTC; the zero time is encoded as its own text (for
// NOT NULL columns) and, through encOptTime, as NULL.
func encTime(t time.Time) (string, error) {
	u := t.UTC()
	if u.Year() < 0 || u.Year() > 9999 {
		return "", fmt.Errorf("%w: time %v outside years 0000–9999", crossroads.ErrInvalid, t)
	}
	return u.Format(timeLayout), nil
}

func encOptTime(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	return encTime(t)
}

func decTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil // time.Parse of "Z" yields UTC, so the zero time is == time.Time{}
}

func decOptTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return decTime(s.String)
}

func encJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	return string(b), nil
}

// unmarshalOpt decodes a JSON column that is mostly null (no operations)
// without paying for the decoder when it is.
func unmarshalOpt(s string, v any) error {
	if s == "null" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// constraintErr marks SQLite constraint violations (foreign keys, checks,
// NOT NULL) as crossroads.ErrInvalid.
func constraintErr(err error) error {
	if err != nil && strings.Contains(err.Error(), "constraint failed") {
		return fmt.Errorf("%w: %w", crossroads.ErrInvalid, err)
	}
	return err
}

// Registers implements crossroads.RegisterStore: every participant, service
// and authorisation, each list sorted by id, read in one snapshot.
func (s *Registers) Registers(ctx context.Context) (*crossroads.Network, error) {
	tx, err := s.c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	defer tx.Rollback()
	n := &crossroads.Network{}
	if err := tx.QueryRowContext(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&n.Version); err != nil {
		return nil, fmt.Errorf("registers: version: %w", err)
	}
	if n.Participants, err = readParticipants(ctx, tx); err != nil {
		return nil, fmt.Errorf("registers: participants: %w", err)
	}
	if n.Services, err = readServices(ctx, tx); err != nil {
		return nil, fmt.Errorf("registers: services: %w", err)
	}
	if n.Authorisations, err = readAuthorisations(ctx, tx); err != nil {
		return nil, fmt.Errorf("registers: authorisations: %w", err)
	}
	if err := readPermits(ctx, tx, n.Authorisations); err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	if n.Subscriptions, err = readSubscriptions(ctx, tx); err != nil { // subscriptions.go
		return nil, fmt.Errorf("registers: %w", err)
	}
	return n, nil
}

func readParticipants(ctx context.Context, tx *sql.Tx) ([]crossroads.Participant, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, kind, status, incident_contact, enterprise, country FROM participants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []crossroads.Participant
	for rows.Next() {
		var p crossroads.Participant
		if err := rows.Scan(&p.ID, &p.Name, &p.Kind, &p.Status, &p.IncidentContact, &p.Enterprise, &p.Country); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func readServices(ctx context.Context, tx *sql.Tx) ([]crossroads.Service, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, provider, base_url, description, classification, fields, concerns_person, subject, operations FROM services ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []crossroads.Service
	for rows.Next() {
		var sv crossroads.Service
		var fields, ops string
		if err := rows.Scan(&sv.ID, &sv.Provider, &sv.BaseURL, &sv.Description, &sv.Classification, &fields, &sv.ConcernsPerson, &sv.Subject, &ops); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(fields), &sv.Fields); err != nil {
			return nil, fmt.Errorf("service %s fields: %w", sv.ID, err)
		}
		if err := unmarshalOpt(ops, &sv.Operations); err != nil {
			return nil, fmt.Errorf("service %s operations: %w", sv.ID, err)
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

func readAuthorisations(ctx context.Context, tx *sql.Tx) ([]crossroads.Authorisation, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, reference, grantee, purposes, fields, capacities, valid_from, valid_to, status,
		has_limits, limit_rate, limit_burst, limit_max_concurrent, operations FROM authorisations ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []crossroads.Authorisation
	index := map[string]int{}
	for rows.Next() {
		var (
			a                          crossroads.Authorisation
			purposes, fields, caps, vf string
			ops                        string
			vt                         sql.NullString
			hasLimits                  bool
			rate                       float64
			burst, maxConcurrent       int
		)
		if err := rows.Scan(&a.ID, &a.Reference, &a.Grantee, &purposes, &fields, &caps, &vf, &vt, &a.Status,
			&hasLimits, &rate, &burst, &maxConcurrent, &ops); err != nil {
			return nil, err
		}
		if err := errors.Join(
			json.Unmarshal([]byte(purposes), &a.Purposes),
			json.Unmarshal([]byte(fields), &a.Fields),
			json.Unmarshal([]byte(caps), &a.Capacities),
			unmarshalOpt(ops, &a.Operations),
		); err != nil {
			return nil, fmt.Errorf("authorisation %s: %w", a.ID, err)
		}
		if a.ValidFrom, err = decTime(vf); err != nil {
			return nil, fmt.Errorf("authorisation %s: %w", a.ID, err)
		}
		if a.ValidTo, err = decOptTime(vt); err != nil {
			return nil, fmt.Errorf("authorisation %s: %w", a.ID, err)
		}
		if hasLimits {
			a.Limits = &crossroads.Limits{RatePerSecond: rate, Burst: burst, MaxConcurrent: maxConcurrent}
		}
		index[a.ID] = len(out)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	srows, err := tx.QueryContext(ctx, `SELECT authorisation, service FROM authorisation_services ORDER BY authorisation, position`)
	if err != nil {
		return nil, err
	}
	defer srows.Close()
	for srows.Next() {
		var id, svc string
		if err := srows.Scan(&id, &svc); err != nil {
			return nil, err
		}
		if i, ok := index[id]; ok {
			out[i].Services = append(out[i].Services, svc)
		}
	}
	return out, srows.Err()
}

// Apply implements crossroads.RegisterStore. Entries are written in the
// order participants, services, authorisations, integrations, so that a
// batch may refer to entries it creates itself.
func (s *Registers) Apply(ctx context.Context, n *crossroads.Network) error {
	if n == nil {
		return nil
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer tx.Rollback()
	if err := checkVersion(ctx, tx, n.Version, len(n.Participants)+len(n.Services)+len(n.Authorisations)+len(n.Subscriptions) > 0); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	for _, p := range n.Participants {
		if err := putParticipant(ctx, tx, p); err != nil {
			return fmt.Errorf("apply: participant %q: %w", p.ID, constraintErr(err))
		}
	}
	for _, sv := range n.Services {
		if err := putService(ctx, tx, sv); err != nil {
			return fmt.Errorf("apply: service %q: %w", sv.ID, constraintErr(err))
		}
	}
	for _, a := range n.Authorisations {
		if err := putAuthorisation(ctx, tx, a); err != nil {
			return fmt.Errorf("apply: authorisation %q: %w", a.ID, constraintErr(err))
		}
	}
	if err := putPermits(ctx, tx, n.Authorisations); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := putSubscriptions(ctx, tx, n.Subscriptions); err != nil { // subscriptions.go
		return fmt.Errorf("apply: %w", err)
	}
	if len(n.Integrations) > 0 {
		st, err := tx.PrepareContext(ctx, putIntegrationSQL)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		defer st.Close()
		at, err := encTime(time.Now())
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		for _, in := range n.Integrations {
			if err := applyIntegration(ctx, tx, st, in, at); err != nil {
				return fmt.Errorf("apply: integration of %q: %w", in.Participant, constraintErr(err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply: commit: %w", err)
	}
	return nil
}

// checkVersion compares the registers' version with want (0: no
// precondition) and, if bump, increments it.
func checkVersion(ctx context.Context, tx *sql.Tx, want int64, bump bool) error {
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&v); err != nil {
		return fmt.Errorf("register version: %w", err)
	}
	if want != 0 && v != want {
		return fmt.Errorf("%w: at version %d, not %d", crossroads.ErrStale, v, want)
	}
	if bump {
		if _, err := tx.ExecContext(ctx, `UPDATE register_version SET version = version + 1 WHERE id = 1`); err != nil {
			return fmt.Errorf("register version: %w", err)
		}
	}
	return nil
}

// applyIntegration upserts in and records it in the history as a
// registration or a correction (nothing when it is already so).
func applyIntegration(ctx context.Context, tx *sql.Tx, st *sql.Stmt, in crossroads.Integration, at string) error {
	from, err := encTime(in.From)
	if err != nil {
		return err
	}
	var old sql.NullString
	action := crossroads.IntegrationRegister
	switch err := tx.QueryRowContext(ctx, `SELECT valid_to FROM integrations WHERE person = ? AND participant = ? AND sector = ?
		AND capacity = ? AND valid_from = ? AND kind = ?`, in.Person, in.Participant, in.Sector, in.Capacity, from, encKind(in.Kind)).Scan(&old); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		prev, err := decOptTime(old)
		if err != nil {
			return err
		}
		if prev.Equal(in.To) {
			return nil
		}
		action = crossroads.IntegrationCorrect
	}
	if err := putIntegration(ctx, st, in); err != nil {
		return err
	}
	return addHistory(ctx, tx, crossroads.IntegrationEvent{Action: action, Integration: in}, at)
}

func addHistory(ctx context.Context, tx *sql.Tx, ev crossroads.IntegrationEvent, at string) error {
	in := ev.Integration
	from, err1 := encTime(in.From)
	to, err2 := encOptTime(in.To)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO integration_history(action, kind, person, participant, sector, capacity,
		valid_from, valid_to, actor, user_name, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Action, encKind(in.Kind), in.Person, in.Participant, in.Sector, in.Capacity, from, to, ev.Actor, ev.User, at)
	return err
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

func putParticipant(ctx context.Context, tx *sql.Tx, p crossroads.Participant) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO participants(id, name, kind, status, incident_contact, enterprise, country) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, status = excluded.status,
		incident_contact = excluded.incident_contact, enterprise = excluded.enterprise, country = excluded.country`,
		p.ID, p.Name, p.Kind, p.Status, p.IncidentContact, p.Enterprise, p.Country)
	return err
}

func putService(ctx context.Context, tx *sql.Tx, sv crossroads.Service) error {
	fields, err := encJSON(sv.Fields)
	if err != nil {
		return err
	}
	ops, err := encJSON(sv.Operations)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO services(id, provider, base_url, description, classification, fields, concerns_person,
		subject, operations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET provider = excluded.provider, base_url = excluded.base_url,
		description = excluded.description, classification = excluded.classification, fields = excluded.fields,
		concerns_person = excluded.concerns_person, subject = excluded.subject, operations = excluded.operations`,
		sv.ID, sv.Provider, sv.BaseURL, sv.Description, sv.Classification, fields, sv.ConcernsPerson, sv.Subject, ops)
	return err
}

func putAuthorisation(ctx context.Context, tx *sql.Tx, a crossroads.Authorisation) error {
	for svc := range a.Fields {
		found := false
		for _, s := range a.Services {
			found = found || s == svc
		}
		if !found {
			return fmt.Errorf("%w: fields granted for service %q, which the authorisation does not name", crossroads.ErrInvalid, svc)
		}
	}
	purposes, err1 := encJSON(a.Purposes)
	fields, err2 := encJSON(a.Fields)
	caps, err3 := encJSON(a.Capacities)
	vf, err4 := encTime(a.ValidFrom)
	vt, err5 := encOptTime(a.ValidTo)
	ops, err6 := encJSON(a.Operations)
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	var l crossroads.Limits
	if a.Limits != nil {
		l = *a.Limits
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO authorisations(id, reference, grantee, purposes, fields, capacities, valid_from, valid_to,
		status, has_limits, limit_rate, limit_burst, limit_max_concurrent, operations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET reference = excluded.reference, grantee = excluded.grantee, purposes = excluded.purposes,
		fields = excluded.fields, capacities = excluded.capacities, valid_from = excluded.valid_from, valid_to = excluded.valid_to,
		status = excluded.status, has_limits = excluded.has_limits, limit_rate = excluded.limit_rate,
		limit_burst = excluded.limit_burst, limit_max_concurrent = excluded.limit_max_concurrent, operations = excluded.operations`,
		a.ID, a.Reference, a.Grantee, purposes, fields, caps, vf, vt, a.Status,
		a.Limits != nil, l.RatePerSecond, l.Burst, l.MaxConcurrent, ops)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM authorisation_services WHERE authorisation = ?`, a.ID); err != nil {
		return err
	}
	for i, svc := range a.Services {
		if _, err := tx.ExecContext(ctx, `INSERT INTO authorisation_services(authorisation, position, service) VALUES (?, ?, ?)`, a.ID, i, svc); err != nil {
			return err
		}
	}
	return nil
}

const putIntegrationSQL = `INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_to, kind)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(person, participant, sector, capacity, valid_from, kind) DO UPDATE SET valid_to = excluded.valid_to`

// putIntegration writes in through st, a statement of putIntegrationSQL.
func putIntegration(ctx context.Context, st *sql.Stmt, in crossroads.Integration) error {
	from, err1 := encTime(in.From)
	to, err2 := encOptTime(in.To)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	_, err := st.ExecContext(ctx, in.Person, in.Participant, in.Sector, in.Capacity, from, to, encKind(in.Kind))
	return err
}

// PutIntegration implements crossroads.RegisterStore.
func (s *Registers) PutIntegration(ctx context.Context, in crossroads.Integration) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put integration: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, putIntegrationSQL)
	if err != nil {
		return fmt.Errorf("put integration: %w", err)
	}
	defer st.Close()
	if err := putIntegration(ctx, st, in); err != nil {
		return fmt.Errorf("put integration of %q: %w", in.Participant, constraintErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put integration: commit: %w", err)
	}
	return nil
}

// DeleteIntegration implements crossroads.RegisterStore. Only the key
// (person, participant, sector, capacity, from) is used.
func (s *Registers) DeleteIntegration(ctx context.Context, in crossroads.Integration) error {
	from, err := encTime(in.From)
	if err != nil {
		return fmt.Errorf("delete integration: %w", err)
	}
	res, err := s.c.w.ExecContext(ctx, `DELETE FROM integrations WHERE person = ? AND participant = ? AND sector = ? AND capacity = ? AND valid_from = ? AND kind = ?`,
		in.Person, in.Participant, in.Sector, in.Capacity, from, encKind(in.Kind))
	if err != nil {
		return fmt.Errorf("delete integration: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete integration: %w", err)
	} else if n == 0 {
		return fmt.Errorf("delete integration of %q: %w", in.Participant, crossroads.ErrNotFound)
	}
	return nil
}

const (
	integrationColumns = `SELECT person, participant, sector, capacity, valid_from, valid_to, kind FROM integrations`
	integrationOrder   = ` ORDER BY person, participant, sector, capacity, valid_from, kind`
)

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

// EachIntegration implements crossroads.RegisterStore. Rows are read one
// at a time from a read snapshot; fn may call the store (writes do not
// wait for the stream, and the stream does not see them). An error from fn
// stops the stream and is returned wrapped.
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
	rows, err := s.lookups[i].QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			in   crossroads.Integration
			from string
			to   sql.NullString
		)
		if err := rows.Scan(&in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &to, &in.Kind); err != nil {
			return err
		}
		in.Kind = decKind(in.Kind)
		if in.From, err = decTime(from); err != nil {
			return err
		}
		if in.To, err = decOptTime(to); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return rows.Err()
}
