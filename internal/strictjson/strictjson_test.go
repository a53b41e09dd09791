package strictjson_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/strictjson"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want error // nil: accepted
		path string
		key  string
	}{
		{"object", `{"a":1,"b":[1,2,{"c":null}],"d":{"e":"x"}}`, nil, "", ""},
		{"scalar", `"x"`, nil, "", ""},
		{"array of objects", `[{"a":1},{"a":2}]`, nil, "", ""},
		{"same key in sibling objects", `{"x":{"a":1},"y":{"a":1}}`, nil, "", ""},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, nil, "", ""},
		{"escaped backslash before u", `{"a":"\\ud800"}`, nil, "", ""},
		{"keys differing in case", `{"env":{"a":"1","A":"2"}}`, nil, "", ""},
		{"top-level duplicate", `{"name":"a","name":"b"}`, strictjson.ErrDuplicateKey, "", "name"},
		{"escaped duplicate", `{"name":"a","n\u0061me":"b"}`, strictjson.ErrDuplicateKey, "", "name"},
		{"nested duplicate", `{"t":{"env":{"K":"1","K":"2"}}}`, strictjson.ErrDuplicateKey, ".t.env", "K"},
		{"duplicate in array element", `[{"a":1},{"b":1,"b":2}]`, strictjson.ErrDuplicateKey, "[1]", "b"},
		{"duplicate after nested value", `{"a":{"x":[1,{}]},"a":2}`, strictjson.ErrDuplicateKey, "", "a"},
		{"invalid UTF-8", "{\"a\":\"\xff\xfe\"}", strictjson.ErrInvalidUTF8, "", ""},
		{"invalid UTF-8 in key", "{\"\xc3\":1}", strictjson.ErrInvalidUTF8, "", ""},
		{"lone high surrogate", `{"a":"\ud800x"}`, strictjson.ErrInvalidUTF8, "", ""},
		{"lone low surrogate", `{"a":"\udc00"}`, strictjson.ErrInvalidUTF8, "", ""},
		{"high then non-low", `{"a":"\ud800\u0041"}`, strictjson.ErrInvalidUTF8, "", ""},
		{"two values", `{} {}`, strictjson.ErrSyntax, "", ""},
		{"truncated", `{"a":[1,2`, strictjson.ErrSyntax, "", ""},
		{"empty", ``, strictjson.ErrSyntax, "", ""},
		{"garbage", `{"a" 1}`, strictjson.ErrSyntax, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *strictjson.DuplicateKeyError
			if errors.As(err, &de) && (de.Key != tc.key || de.Path != tc.path) {
				t.Fatalf("duplicate %q at %q, want %q at %q", de.Key, de.Path, tc.key, tc.path)
			}
		})
	}
}

func TestCheckNeverQuotesValues(t *testing.T) {
	const canary = "CANARY-strictjson-7f3a"
	for _, doc := range []string{
		`{"a":"` + canary + "\xff" + `"}`,
		`{"a":"` + canary + `\ud800"}`,
		`{"a":"` + canary + `","a":"` + canary + `"}`,
		`{"a":"` + canary + `" "b"}`,
	} {
		err := strictjson.Check([]byte(doc))
		if err == nil || strings.Contains(err.Error(), canary) {
			t.Fatalf("%q: %v", doc, err)
		}
	}
}

func TestDuplicateKeyTruncated(t *testing.T) {
	k := strings.Repeat("k", 500)
	err := strictjson.Check([]byte(`{"` + k + `":1,"` + k + `":2}`))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error not bounded: %d bytes", len(err.Error()))
	}
}

func TestDepthLimit(t *testing.T) {
	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	if err := strictjson.Check(deep(strictjson.MaxDepth)); err != nil {
		t.Fatalf("depth %d refused: %v", strictjson.MaxDepth, err)
	}
	if err := strictjson.Check(deep(strictjson.MaxDepth + 1)); !errors.Is(err, strictjson.ErrSyntax) {
		t.Fatalf("depth %d: %v, want ErrSyntax", strictjson.MaxDepth+1, err)
	}
	// A megabyte of open brackets is refused at the limit, not walked.
	if err := strictjson.Check([]byte(strings.Repeat("[", 1<<20))); !errors.Is(err, strictjson.ErrSyntax) {
		t.Fatalf("1 MiB of '[': %v", err)
	}
}

// BenchmarkCheckDeep guards against work that grows faster than the input
// (paths built per level made 100,000 nested arrays take over a minute).
func BenchmarkCheckDeep(b *testing.B) {
	doc := []byte(strings.Repeat(`{"k":[`, strictjson.MaxDepth/2) + "1" + strings.Repeat("]}", strictjson.MaxDepth/2))
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := strictjson.Check(doc); err != nil {
			b.Fatal(err)
		}
	}
}
