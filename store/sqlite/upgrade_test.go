package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// TestUpgradeFromWave1: a registers database made by the wave-1 schema
// (migrations 0001 and 0002) opens with its data intact: integrations
// become the person kind, services keep concernsPerson and get no
// operations, the version starts, the change feed keeps working.
func TestUpgradeFromWave1(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "registers.db")
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	for v, name := range map[int]string{1: "0001_registers.sql", 2: "0002_integration_changes.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", "registers", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations(version, name) VALUES (?, ?)`, v, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO participants(id, name, kind, status) VALUES ('rr', 'RR', 'authentic-source', 'active'), ('inst', 'I', 'institution', 'active')`,
		`INSERT INTO services(id, provider, base_url, classification, fields, concerns_person) VALUES ('p', 'rr', 'https://rr.example', 2, '["/name"]', 1)`,
		`INSERT INTO authorisations(id, reference, grantee, purposes, fields, capacities, valid_from, status)
			VALUES ('a', 'R', 'inst', '["aid"]', '{"p":["/name"]}', '[{"sector":"17","code":"b"}]', '2024-01-01T00:00:00.000000000Z', 'active')`,
		`INSERT INTO authorisation_services(authorisation, position, service) VALUES ('a', 0, 'p')`,
		`INSERT INTO integrations(person, participant, sector, capacity, valid_from) VALUES ('85073003328', 'inst', '17', 'b', '2024-01-01T00:00:00.000000000Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := sqlite.OpenRegisters(ctx, file)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer s.Close()
	n, err := s.Registers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Version <= 0 || len(n.Services) != 1 || !n.Services[0].ConcernsPerson || n.Services[0].SubjectKind() != crossroads.SubjectPerson ||
		n.Services[0].Operations != nil || n.Authorisations[0].Operations != nil || len(n.Authorisations[0].Services) != 1 {
		t.Fatalf("after upgrade: %+v", n)
	}
	ins, err := s.Integrations(ctx, "", "85073003328")
	if err != nil || len(ins) != 1 || ins[0].Kind != "" || ins[0].Capacity != "b" {
		t.Fatalf("integrations after upgrade: %+v %v", ins, err)
	}
	last, err := s.LastIntegrationChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := ins[0]
	in.Kind = crossroads.SubjectEnterprise
	in.Person = "0403170701"
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	ch, err := s.IntegrationChanges(ctx, last, 10)
	if err != nil || len(ch) != 1 || ch[0].Integration.Kind != crossroads.SubjectEnterprise {
		t.Fatalf("change feed after upgrade: %+v %v", ch, err)
	}
}
