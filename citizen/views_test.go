package citizen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/citizen"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// onBackends runs fn on a trail over SQLite and over PostgreSQL.
func onBackends(t *testing.T, fn func(t *testing.T, setup func(t *testing.T, mods ...func(*citizen.Config)) *env)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T, mods ...func(*citizen.Config)) *env {
			dir := t.TempDir()
			st, err := sqlite.OpenAudit(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return setupOn(t, dir, st, mods...)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, func(t *testing.T, mods ...func(*citizen.Config)) *env {
			db := pgtest.New(t)
			st, err := postgres.OpenAudit(context.Background(), db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return setupOn(t, t.TempDir(), st, mods...)
		})
	})
}

// commit commits recs and waits until they are in a published checkpoint.
func (e *env) commit(t *testing.T, recs ...*crossroads.AuditRecord) {
	t.Helper()
	ctx := context.Background()
	for _, r := range recs {
		if _, err := e.trail.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := note.NewVerifier(e.trail.VerifierKey())
	want := int64(0)
	if p, err := e.trail.Search(ctx, audit.Query{Limit: 1}); err == nil && len(p.Records) == 1 {
		want = -1 // wait for the newest to be integrated
	}
	deadline := time.Now().Add(30 * time.Second) // stops a hung test only
	for {
		p, err := e.trail.Search(ctx, audit.Query{Limit: 1})
		if err == nil && len(p.Records) == 1 && p.Records[0].LogIndex != nil {
			want = *p.Records[0].LogIndex + 1
			if cp, err := e.trail.Checkpoint(ctx); err == nil {
				if c, err := verify.OpenCheckpoint(cp, v); err == nil && c.N >= want {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not integrated (want %d)", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// view GETs path (with query) with a bearer token and/or as a participant.
func (e *env) view(t *testing.T, h http.Handler, path, token string, caller *crossroads.Participant) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if caller != nil {
		r = r.WithContext(crossroads.WithCaller(r.Context(), caller))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func exchangesOf(t *testing.T, rec *httptest.ResponseRecorder) citizen.Response {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp citizen.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func filesOf(t *testing.T, rec *httptest.ResponseRecorder) citizen.FilesResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp citizen.FilesResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func exchange(id, kind, subject string, age time.Duration) *crossroads.AuditRecord {
	return &crossroads.AuditRecord{
		ExchangeID: id, Time: time.Now().UTC().Add(-age), Requester: "inst-a", Provider: "src-b",
		Service: "svc-income", SubjectKind: kind, Subject: subject, Purpose: "benefit-check", AuthorisationRef: "DEL-24/123",
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed,
	}
}

func checkProofs(t *testing.T, logKey string, ents []audit.SubjectEntry) {
	t.Helper()
	v, err := note.NewVerifier(logKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ents {
		p, err := verify.ParseProof([]byte(x.Proof))
		if err != nil {
			t.Fatalf("%s: %v", x.ExchangeID, err)
		}
		if _, err := verify.CheckProof(p, v, tlog.Hash(audit.LeafHash(p.Extra))); err != nil {
			t.Fatalf("%s: %v", x.ExchangeID, err)
		}
	}
}

// TestViewPages: the view pages with next links and never drops an entry;
// a page token is bound to its view and its subject.
func TestViewPages(t *testing.T) {
	onBackends(t, func(t *testing.T, setup func(*testing.T, ...func(*citizen.Config)) *env) {
		e := setup(t)
		carol := insz("700101001")
		var recs []*crossroads.AuditRecord
		for i := range 25 {
			recs = append(recs, exchange(fmt.Sprintf("carol-%02d", i), "", carol, time.Duration(25-i)*time.Minute))
		}
		e.commit(t, recs...)
		tok := e.iss.token(t, nil, e.iss.claims(carol))
		seen := map[string]bool{}
		path := citizen.Path + "?limit=10"
		var pages int
		for path != "" {
			rec := e.view(t, e.h, path, tok, nil)
			resp := exchangesOf(t, rec)
			pages++
			for _, x := range resp.Exchanges {
				if seen[x.ExchangeID] {
					t.Fatalf("%s twice", x.ExchangeID)
				}
				seen[x.ExchangeID] = true
			}
			checkProofs(t, resp.LogKey, resp.Exchanges)
			if resp.Next != "" && rec.Header().Get("Link") != "<"+resp.Next+`>; rel="next"` {
				t.Errorf("Link %q, next %q", rec.Header().Get("Link"), resp.Next)
			}
			path = resp.Next
			if pages > 5 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != 25 || pages != 3 {
			t.Fatalf("%d entries in %d pages, want 25 in 3", len(seen), pages)
		}
		// The first page's token, tampered with or used by someone else.
		first := exchangesOf(t, e.view(t, e.h, citizen.Path+"?limit=10", tok, nil))
		u, _ := url.Parse(first.Next)
		pt := u.Query().Get("pageToken")
		bad := []byte(pt)
		bad[len(bad)-1] ^= 1
		if bad[len(bad)-1] == pt[len(pt)-1] {
			t.Fatal("no change")
		}
		for name, c := range map[string]struct{ tok, path string }{
			"tampered":     {tok, citizen.Path + "?limit=10&pageToken=" + url.QueryEscape(string(bad))},
			"other person": {e.iss.token(t, nil, e.iss.claims(alice)), citizen.Path + "?limit=10&pageToken=" + pt},
			"other view":   {tok, citizen.FilesPath + "?limit=10&pageToken=" + pt},
			"other period": {tok, citizen.Path + "?limit=10&from=2020-01-01&pageToken=" + pt},
			"garbage":      {tok, citizen.Path + "?pageToken=12"},
		} {
			h := http.Handler(e.h)
			if strings.HasPrefix(c.path, citizen.FilesPath) {
				h = e.h.Files()
			}
			if rec := e.view(t, h, c.path, c.tok, nil); rec.Code != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", name, rec.Code, rec.Body)
			}
		}
		if rec := e.view(t, e.h, citizen.Path+"?limit=1001", tok, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("limit 1001: %d", rec.Code)
		}
	})
}

// TestFilesAndSearches: integration events about a person are in their
// files view (not in their exchanges), with the file and a proof; an
// auditor's search for them is in their exchanges view.
func TestFilesAndSearches(t *testing.T) {
	onBackends(t, func(t *testing.T, setup func(*testing.T, ...func(*citizen.Config)) *env) {
		e := setup(t)
		from := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
		in := crossroads.Integration{Person: alice, Participant: "inst-a", Sector: "17", Capacity: "claimant", From: from}
		reg, err := audit.IntegrationEvent("register", "inst-a", "clerk-1", in)
		if err != nil {
			t.Fatal(err)
		}
		in.To = from.AddDate(0, 6, 0)
		end, _ := audit.IntegrationEvent("end", "inst-a", "clerk-1", in)
		other, _ := audit.IntegrationEvent("register", "inst-a", "", crossroads.Integration{Person: bob, Participant: "inst-a", Sector: "17", Capacity: "claimant", From: from})
		search, _ := audit.Event(crossroads.RecordAuditSearch, "search", "auditor-1", "", map[string]string{"purpose": "fraud"})
		search.Subject, search.SubjectKind = alice, crossroads.SubjectPerson
		e.commit(t, reg, end, other, search)

		tok := e.iss.token(t, nil, e.iss.claims(alice))
		files := filesOf(t, e.view(t, e.h.Files(), citizen.FilesPath, tok, nil))
		if len(files.Files) != 2 || files.From != nil {
			t.Fatalf("files %+v", files)
		}
		checkProofs(t, files.LogKey, files.Files)
		got := files.Files[0] // newest first: the end
		if got.Kind != crossroads.RecordIntegration || got.Action != "end" || got.Institution != "inst-a" || got.File == nil ||
			got.File.Sector != "17" || got.File.Capacity != "claimant" || !got.File.From.Equal(from) || got.File.To == nil || !got.File.To.Equal(in.To) {
			t.Fatalf("file entry %+v %+v", got, got.File)
		}
		if files.Files[1].Action != "register" || files.Files[1].File.To != nil {
			t.Fatalf("file entry %+v", files.Files[1])
		}
		if strings.Contains(e.view(t, e.h.Files(), citizen.FilesPath, tok, nil).Body.String(), "clerk-1") {
			t.Error("the institution's user is shown to the person")
		}
		ex := exchangesOf(t, e.view(t, e.h, citizen.Path, tok, nil))
		kinds := map[string]int{}
		for _, x := range ex.Exchanges {
			kinds[x.Kind]++
			if x.Kind == crossroads.RecordAuditSearch && (x.Institution != "auditor-1" || x.Action != "search") {
				t.Errorf("search entry %+v", x)
			}
		}
		if kinds[""] != 2 || kinds[crossroads.RecordAuditSearch] != 1 || kinds[crossroads.RecordIntegration] != 0 {
			t.Fatalf("exchanges view kinds %v", kinds)
		}
		// Bob sees his file only.
		if files := filesOf(t, e.view(t, e.h.Files(), citizen.FilesPath, e.iss.token(t, nil, e.iss.claims(bob)), nil)); len(files.Files) != 1 {
			t.Fatalf("bob's files %+v", files.Files)
		}
	})
}

// enterpriseNumber is a valid CBE number, and how a user may write it.
var (
	enterpriseNumber = personid.MakeEnterprise(1234567)
	enterpriseTyped  = "BE" + enterpriseNumber[:4] + "." + enterpriseNumber[4:7] + "." + enterpriseNumber[7:]
)

// TestEnterpriseViews: a company's representative — by ID token claim or
// as a participant of kind enterprise-representative — sees the exchanges
// and files about that enterprise; the person views never show enterprise
// records, even where the ids are alike.
func TestEnterpriseViews(t *testing.T) {
	onBackends(t, func(t *testing.T, setup func(*testing.T, ...func(*citizen.Config)) *env) {
		// Opaque person ids, so that a person can have the very id of the enterprise.
		e := setup(t, func(c *citizen.Config) { c.EnterpriseClaim = "enterprise_number"; c.Scheme = personid.Opaque{} })
		ent := crossroads.SubjectEnterprise
		file, _ := audit.IntegrationEvent("register", "rsz", "", crossroads.Integration{Kind: ent, Person: enterpriseNumber,
			Participant: "rsz", Sector: "employers", Capacity: "employer", From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
		e.commit(t, exchange("ent-1", ent, enterpriseNumber, time.Hour), exchange("ent-2", ent, enterpriseNumber, 2*time.Hour),
			exchange("same-id-person", crossroads.SubjectPerson, enterpriseNumber, time.Hour), file,
			exchange("other-ent", ent, personid.MakeEnterprise(7654321), time.Hour))

		claims := e.iss.claims("someone")
		claims["enterprise_number"] = enterpriseTyped
		tok := e.iss.token(t, nil, claims)
		rep := &crossroads.Participant{ID: "acme-rep", Kind: crossroads.KindEnterpriseRepresentative, Status: crossroads.StatusActive, Enterprise: enterpriseNumber}
		for name, as := range map[string]struct {
			tok    string
			caller *crossroads.Participant
		}{"token": {tok, nil}, "representative": {"", rep}} {
			resp := exchangesOf(t, e.view(t, e.h.EnterpriseExchanges(), citizen.EnterpriseExchangesPath, as.tok, as.caller))
			if resp.Enterprise != enterpriseNumber || len(resp.Exchanges) != 2 || resp.Exchanges[0].ExchangeID != "ent-2" || resp.Exchanges[1].ExchangeID != "ent-1" { // newest recorded first
				t.Fatalf("%s: enterprise exchanges %+v", name, resp)
			}
			checkProofs(t, resp.LogKey, resp.Exchanges)
			files := filesOf(t, e.view(t, e.h.EnterpriseFiles(), citizen.EnterpriseFilesPath, as.tok, as.caller))
			if len(files.Files) != 1 || files.Files[0].File == nil || files.Files[0].File.Capacity != "employer" {
				t.Fatalf("%s: enterprise files %+v", name, files)
			}
			checkProofs(t, files.LogKey, files.Files)
		}
		// The person with the same id sees their own exchange only.
		person := exchangesOf(t, e.view(t, e.h, citizen.Path, e.iss.token(t, nil, e.iss.claims(enterpriseNumber)), nil))
		if len(person.Exchanges) != 1 || person.Exchanges[0].ExchangeID != "same-id-person" {
			t.Fatalf("person view: %+v", person.Exchanges)
		}
		if f := filesOf(t, e.view(t, e.h.Files(), citizen.FilesPath, e.iss.token(t, nil, e.iss.claims(enterpriseNumber)), nil)); len(f.Files) != 0 {
			t.Fatalf("person sees the enterprise's files: %+v", f.Files)
		}
		// Refusals.
		noClaim := e.iss.token(t, nil, e.iss.claims("someone"))
		badClaim := e.iss.claims("someone")
		badClaim["enterprise_number"] = "0123456789" // wrong check digits
		institution := &crossroads.Participant{ID: "inst-a", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}
		badRep := &crossroads.Participant{ID: "x", Kind: crossroads.KindEnterpriseRepresentative, Status: crossroads.StatusActive}
		for name, c := range map[string]struct {
			tok    string
			caller *crossroads.Participant
			status int
		}{
			"nothing":              {"", nil, 401},
			"token without claim":  {noClaim, nil, 403},
			"invalid number":       {e.iss.token(t, nil, badClaim), nil, 403},
			"institution":          {"", institution, 403},
			"representative of ''": {"", badRep, 403},
		} {
			if rec := e.view(t, e.h.EnterpriseExchanges(), citizen.EnterpriseExchangesPath, c.tok, c.caller); rec.Code != c.status || strings.Contains(rec.Body.String(), "ent-1") {
				t.Errorf("%s: status %d, want %d: %s", name, rec.Code, c.status, rec.Body)
			}
		}
	})
}

// TestEnterpriseWithoutTokens: without an enterprise claim, ID tokens do
// not open the enterprise views; without an issuer, representatives still
// see theirs.
func TestEnterpriseWithoutTokens(t *testing.T) {
	e := setup(t)
	claims := e.iss.claims(alice)
	claims["enterprise_number"] = enterpriseNumber
	if rec := e.view(t, e.h.EnterpriseExchanges(), citizen.EnterpriseExchangesPath, e.iss.token(t, nil, claims), nil); rec.Code != 403 {
		t.Fatalf("token without an enterprise claim configured: %d", rec.Code)
	}
	h, err := citizen.New(citizen.Config{Scheme: personid.INSZ{}, Trail: e.trail})
	if err != nil {
		t.Fatal(err)
	}
	rep := &crossroads.Participant{ID: "acme-rep", Kind: crossroads.KindEnterpriseRepresentative, Status: crossroads.StatusActive, Enterprise: enterpriseNumber}
	if rec := e.view(t, h.EnterpriseExchanges(), citizen.EnterpriseExchangesPath, "", rep); rec.Code != 200 {
		t.Fatalf("representative without an issuer: %d %s", rec.Code, rec.Body)
	}
	if rec := e.view(t, h, citizen.Path, e.iss.token(t, nil, e.iss.claims(alice)), nil); rec.Code != 401 {
		t.Fatalf("person view without an issuer: %d", rec.Code)
	}
}
