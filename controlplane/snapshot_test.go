package controlplane

import (
	"fmt"
	"strings"
)

// snapshot describes a user's stored secret set, values included (opened),
// so that two snapshots differ whenever anything stored differs.
func (ts *testServer) snapshot(userID string) string {
	ts.t.Helper()
	ss, err := ts.store.ListSecrets(ts.t.Context(), userID)
	if err != nil {
		ts.t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range ss {
		v, err := ts.sealer.Open(s.Value, sealAD(userID, s.Name))
		if err != nil {
			ts.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%x|%s\n", s.ID, s.Name, s.Description, s.EnvName, s.FilePath, v,
			s.UpdatedAt.UTC().Format("2006-01-02T15:04:05.999999999"))
	}
	return b.String()
}

// wantSnapshot fails unless the user's stored set is still before. It
// never prints values: only whether the sets differ and their sizes.
func (ts *testServer) wantSnapshot(userID, before string) {
	ts.t.Helper()
	if after := ts.snapshot(userID); after != before {
		ts.t.Fatalf("the stored secret set changed (%d lines before, %d after)",
			strings.Count(before, "\n"), strings.Count(after, "\n"))
	}
}
