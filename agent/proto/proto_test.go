package proto

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSecretValueRoundTrip(t *testing.T) {
	const canary = "CANARY-proto-51c0"
	for _, v := range []string{canary, "é\n\x00" + canary, "\xff\xfe" + canary, "\xc3", ""} {
		var s Secret
		s.SetValue(v)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got Secret
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		raw, err := got.RawValue()
		if err != nil || raw != v {
			t.Fatalf("%q came back as %q (%v)", v, raw, err)
		}
		if (s.ValueBase64 != "") == (s.Value != "" || v == "") {
			t.Fatalf("%q: value %q, value_base64 %q: exactly the UTF-8 values go in value", v, s.Value, s.ValueBase64)
		}
	}
	for _, s := range []Secret{
		{Name: "both", Value: canary, ValueBase64: "eA=="},
		{Name: "bad", ValueBase64: canary + "!"},
		{Name: "unpadded", ValueBase64: "eA"},
	} {
		_, err := s.RawValue()
		if !errors.Is(err, ErrValueEncoding) || strings.Contains(err.Error(), canary) {
			t.Fatalf("%s: %v", s.Name, err)
		}
	}
}
