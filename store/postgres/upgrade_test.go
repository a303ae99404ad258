package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// TestUpgradeFromWave1: a database made by the wave-1 register schema
// (0001, 0002) opens with its data intact: integrations become the person
// kind, the version starts, the change feed carries kinds.
func TestUpgradeFromWave1(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.New(t).Schema(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (schema text NOT NULL, version integer NOT NULL, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schema, version))`); err != nil {
		t.Fatal(err)
	}
	for v, name := range []string{"0001_registers.sql", "0002_integration_changes.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", "registers", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations(schema, version, name) VALUES ('registers', $1, $2)`, v+1, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO participants(id, name, kind, status) VALUES ('rr', 'RR', 'authentic-source', 'active'), ('inst', 'I', 'institution', 'active')`,
		`INSERT INTO services(id, provider, base_url, classification, fields, concerns_person) VALUES ('p', 'rr', 'https://rr.example', 2, '{/name}', true)`,
		`INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_from_ns) VALUES ('85073003328', 'inst', '17', 'b', '2024-01-01', 0)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)

	s, err := postgres.OpenRegisters(ctx, dsn)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer s.Close()
	n, err := s.Registers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Version <= 0 || len(n.Services) != 1 || n.Services[0].SubjectKind() != crossroads.SubjectPerson || n.Services[0].Operations != nil {
		t.Fatalf("after upgrade: %+v", n)
	}
	ins, err := s.Integrations(ctx, "", "85073003328")
	if err != nil || len(ins) != 1 || ins[0].Kind != "" {
		t.Fatalf("integrations after upgrade: %+v %v", ins, err)
	}
	last, err := s.LastIntegrationChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := ins[0]
	in.Kind, in.Person = crossroads.SubjectEnterprise, "0403170701"
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	if ch, err := s.IntegrationChanges(ctx, last, 10); err != nil || len(ch) != 1 || ch[0].Integration.Kind != crossroads.SubjectEnterprise {
		t.Fatalf("change feed after upgrade: %+v %v", ch, err)
	}
}
