package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// domain separates Courier's audit hashes from any other SHA-256 use; the
// version changes if the encoding ever does.
const domain = "courier-audit-v1\n"

// Hash returns the hash of r chained to prev: SHA-256 over a canonical
// encoding of every field of r but Seq, PrevHash and Hash, then prev. Each
// field is written as its length (uvarint) then its bytes, so no two
// records share an encoding. Seq is left out on purpose: the order is
// protected by the links, so a swapped pair shows as reordered rather than
// as edited.
func Hash(r Record, prev []byte) []byte {
	// One buffer hashed at once: writing each field to a hash.Hash made
	// the stores' group commits allocate a copy of every field.
	var stack [1024]byte
	b := append(stack[:0], domain...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	for _, f := range [...]string{
		r.Actor.Kind, r.Actor.ID, r.Actor.Name, r.Source, r.UserAgent, r.Action,
		r.Target.Kind, r.Target.ID, r.Target.Name, r.Target.OwnerID,
		r.Outcome, r.Reason, string(r.Details), r.RequestID, r.Replica,
	} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(prev)))
	b = append(b, prev...)
	sum := sha256.Sum256(b)
	return sum[:]
}

// Chain sets r's Seq, PrevHash and Hash to follow head, and returns the new
// head. The stores call it inside the write transaction that holds the
// chain's head.
func Chain(head Head, r *Record) Head {
	r.clean()
	r.Seq = head.Seq + 1
	r.PrevHash = append([]byte(nil), head.Hash...)
	r.Hash = Hash(*r, head.Hash)
	return Head{Seq: r.Seq, Hash: r.Hash}
}

// maxField bounds each text field of a record, in bytes.
const maxField = 512

// Clean makes r storable as Chain would (see clean); a store that keeps
// records before chaining them (PostgreSQL's audit_pending) calls it, so a
// client's odd user agent cannot make the write fail.
func (r *Record) Clean() { r.clean() }

// clean makes every text field valid UTF-8 without NUL (PostgreSQL's TEXT
// refuses both) and at most maxField bytes, so that what is hashed is
// exactly what every store keeps. Details is left alone: json.Marshal made
// it valid.
func (r *Record) clean() {
	for _, f := range []*string{&r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &r.Source, &r.UserAgent,
		&r.Action, &r.Target.Kind, &r.Target.ID, &r.Target.Name, &r.Target.OwnerID,
		&r.Outcome, &r.Reason, &r.RequestID, &r.Replica} {
		*f = cleanText(*f)
	}
	r.Time = r.Time.UTC()
}

func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) && len(s) <= maxField {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	for len(s) > maxField {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}
