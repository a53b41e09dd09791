package strictjson_test

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/courierhq/courier/internal/strictjson"
)

// FuzzCheck holds Check to encoding/json's own idea of syntax: it accepts
// only valid JSON, and it never calls valid JSON a syntax error (its other
// refusals are UTF-8 and repeated keys, which encoding/json lets through).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"x",{"b":[null,true]}]`, `{"a":1,"a":2}`, `"\ud800"`, "\"\xff\"", `{} {}`, ` 1 `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := strictjson.Check(data)
		valid := json.Valid(data)
		switch {
		case err == nil && (!valid || !utf8.Valid(data)):
			t.Fatalf("accepted %q, which is not valid UTF-8 JSON", data)
		case errors.Is(err, strictjson.ErrSyntax) && valid:
			t.Fatalf("called valid JSON %q a syntax error: %v", data, err)
		}
	})
}
