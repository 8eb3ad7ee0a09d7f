package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/protocol"
)

// The fixtures in testdata/v3 are databases written by the hub of commit 7f0d5c0 (schema
// version 3, one Go implementation per engine): the SQLite file itself, and a pg_dump of the
// PostgreSQL schema. They were made by running TestWriteFixture, below, in that commit with
//
//	LANEBRIDGE_WRITE_FIXTURE=$PWD/testdata/v3 go test -run TestWriteFixture ./hub/internal/store/
//
// and `pg_dump --schema=lbfixture --inserts --no-owner --no-privileges` of the schema it
// leaves (its psql-only \restrict lines removed). Today's code must open both, migrate them and read everything back.

// checkFixture reads back what fillFixture wrote, through today's code.
func checkFixture(t *testing.T, s *DB) {
	t.Helper()
	ctx := context.Background()
	infos, err := s.ListStores(ctx)
	if err != nil || len(infos) != 2 || infos[0].ID != "s1" || infos[0].Records != 5 || infos[0].Status == nil ||
		infos[0].Status.Backlog != 2 || infos[0].CreatedAt.IsZero() || infos[0].StatusAt.IsZero() {
		t.Fatalf("stores = %+v, %v", infos, err)
	}
	// Stores from before the credential lifecycle are active with no Mosquitto hash.
	if c, err := s.Credentials(ctx, "s2"); err != nil || c.Hash != "hash-of-s2" || c.State != StoreActive || c.MosquittoHash != "" {
		t.Fatalf("credentials = %+v, %v", c, err)
	}
	recs, err := s.Records(ctx, "s1", "", 0, 10)
	if err != nil || len(recs) != 5 || recs[4].Kind != protocol.KindVoid || recs[2].Receipt != "4" {
		t.Fatalf("records = %+v, %v", recs, err)
	}
	day, err := s.Day(ctx, "s1", testDate)
	if err != nil || len(day.Terminals) != 1 || len(day.Terminals[0].Gaps) != 1 || day.Terminals[0].Gaps[0] != [2]int64{3, 3} {
		t.Fatalf("day = %+v, %v", day, err)
	}
	ps, err := s.Postings(ctx, PostingFilter{Store: "s1"})
	if err != nil || len(ps) != 4 {
		t.Fatalf("postings = %+v, %v", ps, err)
	}
	want := []struct {
		state  string
		posted bool
	}{{PostingDone, true}, {PostingRejected, false}, {PostingPending, false}, {PostingPending, false}}
	for i, w := range want {
		if ps[i].State != w.state || ps[i].PostedAt.IsZero() == w.posted || ps[i].CreatedAt.IsZero() {
			t.Fatalf("posting %d = %+v; want state %s, posted %v", i, ps[i], w.state, w.posted)
		}
	}
	if ps[0].Ref != "SO-1" || ps[1].LastError != "unknown sku" || ps[2].NextAt.Year() != 2100 {
		t.Fatalf("postings = %+v", ps)
	}
	ex, err := s.Exceptions(ctx, ExceptionFilter{Store: "s1"})
	if err != nil || len(ex) != 2 {
		t.Fatalf("exceptions = %+v, %v; want agent_alarm and erp_rejected", ex, err)
	}
	for _, e := range ex { // exceptions raised before their history was kept start it raised
		if h, err := s.ExceptionHistory(ctx, e.ID); err != nil || len(h) == 0 || h[0].Action != ActionRaised || !h[0].At.Equal(e.CreatedAt) {
			t.Fatalf("history of migrated exception %+v = %+v, %v", e, h, err)
		}
	}
	c1, err := s.Command(ctx, "c1")
	if err != nil || c1.Result == nil || !c1.Result.OK || c1.ResultAt.IsZero() || c1.Command.FromReceipt != 3 {
		t.Fatalf("command c1 = %+v, %v", c1, err)
	}
	c2, err := s.Command(ctx, "c2")
	if err != nil || c2.Result != nil || !c2.ResultAt.IsZero() {
		t.Fatalf("command c2 = %+v, %v; want no result", c2, err)
	}
	if ok, err := s.PutCommandResult(ctx, "s1", protocol.CommandResult{ID: "c2", OK: true, At: time.Now()}); err != nil || !ok {
		t.Fatalf("first result of c2 = %v, %v; want stored", ok, err)
	}
	cl, err := s.GetClose(ctx, "s1", testDate)
	if err != nil || cl.State != "exceptions" || !strings.Contains(string(cl.Body), `"exceptions"`) {
		t.Fatalf("close = %+v, %v", cl, err)
	}
	es, err := s.ERPStock(ctx, "s1")
	if err != nil || len(es.Items) != 2 || es.OnHand["B2"] != "2.5" || es.PulledAt.IsZero() {
		t.Fatalf("erp stock = %+v, %v", es, err)
	}
	st, items, err := s.InventoryItems(ctx, "s1")
	if err != nil || st.Version != 1 || len(items) != 2 || items[0] != fixtureItems[0] {
		t.Fatalf("inventory = %+v %+v, %v", st, items, err)
	}
	// And it goes on working: the stream continues, a new posting is claimed.
	res, err := s.ApplyBatch(ctx, "s1", "e1", []protocol.Record{kindRec("s1", "e1", 6, protocol.KindSale, "7", 700)})
	if err != nil || res.Applied != 1 || res.AppliedThrough != 6 {
		t.Fatalf("apply after migration = %+v, %v", res, err)
	}
	if ps, err := s.ClaimPostings(ctx, "o2", time.Minute, 10); err != nil || len(ps) != 2 {
		t.Fatalf("claim after migration = %d, %v; want 2 (the new sale and the never-tried pending one)", len(ps), err)
	}
}

func schemaVersionOf(t *testing.T, s *DB) (v, rows int) {
	t.Helper()
	if err := queryRowT(t, s, `SELECT MAX(version), COUNT(*) FROM schema_version`, &v, &rows); err != nil {
		t.Fatal(err)
	}
	return v, rows
}

func TestMigrateSQLiteV3(t *testing.T) {
	b, err := os.ReadFile("testdata/v3/hub.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openSQLiteT(t, path)
	ms, _ := migrations()
	if v, rows := schemaVersionOf(t, s); v != len(ms) || rows != 1+len(ms)-3 {
		t.Fatalf("schema version %d in %d rows; want %d, one row per migration after the old single row", v, rows, len(ms))
	}
	checkFixture(t, s)
}

func TestMigratePostgresV3(t *testing.T) {
	dump, err := os.ReadFile("testdata/v3/postgres.sql")
	if err != nil {
		t.Fatal(err)
	}
	schema := pgSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL())
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, strings.ReplaceAll(string(dump), "lbfixture", schema))
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("load v3 dump: %v", err)
	}
	s := openPostgresT(t, schema)
	ms, _ := migrations()
	if v, rows := schemaVersionOf(t, s); v != len(ms) || rows != 1+len(ms)-3 {
		t.Fatalf("schema version %d in %d rows; want %d", v, rows, len(ms))
	}
	checkFixture(t, s)
}

// A database migrated by a newer hub is refused with a message that says what to do, and
// nothing is changed in it.
func TestNewerSchemaRefused(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) (*DB, func() (*DB, error)){
		"sqlite": func(t *testing.T) (*DB, func() (*DB, error)) {
			path := filepath.Join(t.TempDir(), "hub.db")
			return openSQLiteT(t, path), func() (*DB, error) { return OpenSQLite(context.Background(), path) }
		},
		"postgres": func(t *testing.T) (*DB, func() (*DB, error)) {
			schema := pgSchema(t)
			return openPostgresT(t, schema), func() (*DB, error) { return OpenPostgresSchema(context.Background(), pgURL(), schema) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, reopen := open(t)
			execT(t, s, `INSERT INTO schema_version (version) VALUES (?)`, 99)
			again, err := reopen()
			if err == nil {
				again.Close()
				t.Fatal("a database at schema version 99 was opened")
			}
			if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") {
				t.Fatalf("error = %v; want ErrSchemaTooNew naming version 99", err)
			}
			if v, _ := schemaVersionOf(t, s); v != 99 {
				t.Fatalf("schema version = %d after the refused open", v)
			}
		})
	}
}

// Each migration file is numbered in order and expands to valid SQL on both engines (a fresh
// database runs them all: the contract suites); a macro left unexpanded would fail here.
func TestMigrationsExpand(t *testing.T) {
	ms, err := migrations()
	if err != nil || len(ms) < 4 {
		t.Fatalf("migrations = %d, %v", len(ms), err)
	}
	for _, d := range []dialect{sqliteDialect, postgresDialect} {
		for _, m := range ms {
			if q := d.ddl.Replace(m.sql); strings.Contains(q, "{{") {
				t.Errorf("migration %d (%s) keeps a macro: %s", m.version, m.name, q)
			}
			// Statements are renumbered ? → $n on PostgreSQL, migrations too.
			if strings.Contains(m.sql, "?") {
				t.Errorf("migration %d (%s) holds a ?, which PostgreSQL would read as a placeholder", m.version, m.name)
			}
		}
	}
}
