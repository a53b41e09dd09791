package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

// TestSQLiteAuditTamper edits the audit table behind the store's back and
// expects audit.Verify to name the record.
func TestSQLiteAuditTamper(t *testing.T) {
	storetest.RunAuditTamper(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		path := filepath.Join(t.TempDir(), "courier.db")
		s, err := store.OpenSQLite(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s, func(t *testing.T, q string) {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}
