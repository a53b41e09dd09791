package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
)

// Problems Verify reports.
const (
	// ProblemEdited: a record's content no longer matches its hash, or
	// the record before it was rewritten (its hash recomputed), so the
	// link to it breaks.
	ProblemEdited = "edited"
	// ProblemRemoved: sequence numbers skip, the chain ends before its
	// head, or the first kept record does not follow the checkpoint.
	ProblemRemoved = "removed"
	// ProblemReordered: a record is intact but sits after a record other
	// than the one it was chained to.
	ProblemReordered = "reordered"
)

// Report is the result of Verify.
type Report struct {
	// OK is true when every record from the checkpoint to the head is
	// intact and in order.
	OK bool `json:"ok"`
	// Checked counts the records verified.
	Checked int64 `json:"checked"`
	// From and To are the first and last sequence numbers checked.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Head is the chain's head as the store holds it, in hex.
	Head string `json:"head"`
	// BadSeq is the first record found wrong (0 when OK), Problem one of
	// the Problem constants and Detail a sentence for people.
	BadSeq  int64  `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Page returns at most limit records with a sequence number greater than
// after, oldest first (a store's ListAudit with Filter{After, Limit,
// Oldest: true}).
type Page func(ctx context.Context, after int64, limit int) ([]Record, error)

// verifyBatch is how many records Verify reads at a time.
const verifyBatch = 1000

// Verify walks the chain from st's checkpoint to its head and reports the
// first record that was edited, removed or reordered. An error is returned
// only when the records cannot be read.
func Verify(ctx context.Context, st State, page Page) (Report, error) {
	rep := Report{Head: hex.EncodeToString(st.Head.Hash), From: st.Checkpoint.Seq + 1}
	prev := st.Checkpoint
	// seen maps every hash met so far to its seq, to recognise a record
	// chained to one that is elsewhere (reordered).
	seen := map[string]int64{}
	var held []Record // records whose link broke, awaiting classification
	bad := func(seq int64, problem, detail string) (Report, error) {
		rep.OK, rep.BadSeq, rep.Problem, rep.Detail = false, seq, problem, detail
		return rep, nil
	}
	for {
		recs, err := page(ctx, prev.Seq, verifyBatch)
		if err != nil {
			return rep, err
		}
		for _, r := range recs {
			if r.Seq != prev.Seq+1 {
				return bad(prev.Seq+1, ProblemRemoved,
					fmt.Sprintf("records %d to %d are missing", prev.Seq+1, r.Seq-1))
			}
			if !bytes.Equal(Hash(r, r.PrevHash), r.Hash) {
				return bad(r.Seq, ProblemEdited, "the record's content does not match its hash")
			}
			if !bytes.Equal(r.PrevHash, prev.Hash) {
				held = append(held, r)
			}
			seen[string(r.Hash)] = r.Seq
			rep.Checked, rep.To = rep.Checked+1, r.Seq
			prev = Head{Seq: r.Seq, Hash: r.Hash}
		}
		if len(recs) < verifyBatch {
			break
		}
	}
	if len(held) > 0 {
		r := held[0]
		if at, ok := seen[string(r.PrevHash)]; ok && at != r.Seq-1 {
			return bad(r.Seq, ProblemReordered,
				fmt.Sprintf("the record is intact but was chained after record %d, not %d", at, r.Seq-1))
		}
		if r.Seq == st.Checkpoint.Seq+1 {
			return bad(r.Seq, ProblemRemoved, "the first kept record does not follow the retention checkpoint")
		}
		return bad(r.Seq-1, ProblemEdited,
			fmt.Sprintf("record %d was rewritten or replaced: record %d no longer links to it", r.Seq-1, r.Seq))
	}
	if prev.Seq != st.Head.Seq || !bytes.Equal(prev.Hash, st.Head.Hash) {
		if prev.Seq < st.Head.Seq {
			return bad(prev.Seq+1, ProblemRemoved,
				fmt.Sprintf("the chain ends at record %d but its head is record %d", prev.Seq, st.Head.Seq))
		}
		return bad(prev.Seq, ProblemEdited, "the last record does not match the chain's head")
	}
	rep.OK = true
	return rep, nil
}
