package cli

import (
	"slices"
	"testing"

	"github.com/courierhq/courier/client"
)

// TestFollowMissesNoRecordWrittenWhileStarting writes a matching record
// between each two reads of `audit list --follow`'s start, and then runs
// one poll of its loop: the record must be printed exactly once, wherever
// it landed. (Reading the newest record of all after the first page lost
// one written between the two reads, as CI caught once.)
func TestFollowMissesNoRecordWrittenWhileStarting(t *testing.T) {
	for writeAfter := range 3 { // 0: before the first read
		var log []client.AuditRecord
		for seq := int64(1); seq <= 5; seq++ {
			log = append(log, client.AuditRecord{Seq: seq, Action: "secret.create"})
		}
		calls := 0
		write := func() { log = append(log, client.AuditRecord{Seq: 6, Action: "secret.delete"}) }
		if writeAfter == 0 {
			write()
		}
		// fetch answers like the API: newest first, or oldest first after
		// a cursor; it filters on the action only.
		fetch := func(q client.AuditQuery) (client.AuditPage, error) {
			var recs []client.AuditRecord
			for _, r := range log {
				if (q.Action == "" || r.Action == q.Action) && r.Seq > q.After {
					recs = append(recs, r)
				}
			}
			if q.After == 0 {
				slices.Reverse(recs)
			}
			if q.Limit > 0 && len(recs) > q.Limit {
				recs = recs[:q.Limit]
			}
			calls++
			if calls == writeAfter {
				defer write()
			}
			return client.AuditPage{Records: recs}, nil
		}
		q := client.AuditQuery{Action: "secret.delete", Limit: 100}
		shown, after, err := firstAuditPage(fetch, q, true)
		if err != nil {
			t.Fatal(err)
		}
		fq := q
		fq.After, fq.Limit = after, 1000
		polled, _ := fetch(fq)
		printed := 0
		for _, r := range append(shown, polled.Records...) {
			if r.Seq == 6 {
				printed++
			}
		}
		if printed != 1 {
			t.Errorf("record written after read %d: printed %d times (first page %v, follow from %d)", writeAfter, printed, shown, after)
		}
	}
}
