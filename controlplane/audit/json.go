package audit

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// recordJSON is Record with the hashes in hex, as the API, the CLI and
// the export file show them (and as the server log publishes the head).
type recordJSON struct {
	plainRecord
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

type plainRecord Record

// MarshalJSON writes the hashes in hex.
func (r Record) MarshalJSON() ([]byte, error) {
	p := plainRecord(r)
	p.PrevHash, p.Hash = nil, nil
	return json.Marshal(recordJSON{plainRecord: p, PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	prev, err1 := hex.DecodeString(j.PrevHash)
	h, err2 := hex.DecodeString(j.Hash)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("audit record %d: hashes are not hex", j.Seq)
	}
	*r = Record(j.plainRecord)
	r.PrevHash, r.Hash = prev, h
	return nil
}
