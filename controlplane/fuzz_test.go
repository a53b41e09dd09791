package controlplane

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/inject"
	"github.com/courierhq/courier/internal/strictjson"
)

// Fuzz targets for REST request decoding. Seed corpora live in
// testdata/fuzz/<target>/; .ci/run runs each for a bounded
// number of inputs (a count, since a duration trips golang/go#75804):
//
//	go test -run '^$' -fuzz '^FuzzDecodeCreateSecret$' -fuzztime 10000x ./controlplane

// fuzzAPI is an api with what prepare needs: default limits, no store.
func fuzzAPI() *api {
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return time.Unix(0, 0) }
	return &api{cfg: cfg, sealer: seal.Plain{}}
}

// clientError fails t unless err is nil or a refusal of the input (a 4xx
// the API answers with a message), never an internal error.
func clientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var (
		ae *apiError
		le *inject.LimitError
		es inject.Errors
		fe *inject.FieldError
	)
	switch {
	case errors.As(err, &ae):
		if ae.status < 400 || ae.status >= 500 || ae.body.Message == "" {
			t.Fatalf("refusal %d with message %q", ae.status, ae.body.Message)
		}
	case errors.As(err, &le), errors.As(err, &es), errors.As(err, &fe):
	default:
		t.Fatalf("not a client error: %T %v", err, err)
	}
}

// accepted checks what every accepted body must be: UTF-8 without repeated
// keys (so nothing was altered or dropped by the decoder).
func accepted(t *testing.T, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		t.Fatal("a body with invalid UTF-8 was accepted")
	}
	if err := strictjson.Check(data); err != nil {
		t.Fatalf("a body strictjson refuses was accepted: %v", err)
	}
}

func FuzzDecodeCreateSecret(f *testing.F) {
	f.Add([]byte(`{"name":"api-key","value":"v","env_name":"API_KEY","file_path":"~/.k"}`))
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req createSecretRequest
		err := decodeStrict(data, &req)
		clientError(t, err)
		if err != nil {
			return
		}
		accepted(t, data)
		// What decoded re-encodes and decodes to the same request.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var req2 createSecretRequest
		if err := decodeStrict(again, &req2); err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip: %v", err)
		}
		s, err := a.prepare("u", req, a.cfg.stamp())
		clientError(t, err)
		if err != nil {
			return
		}
		v, err := a.sealer.Open(s.Value, sealAD("u", s.Name))
		if err != nil {
			t.Fatal(err)
		}
		sec := inject.Secret{Name: s.Name, Value: string(v), EnvName: s.EnvName, FilePath: s.FilePath, Description: s.Description}
		if err := sec.Validate(); err != nil {
			t.Fatalf("an invalid secret was prepared: %v", err)
		}
	})
}

func FuzzDecodeUpdateSecret(f *testing.F) {
	f.Add([]byte(`{"value_base64":"/wA=","file_path":""}`))
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req updateSecretRequest
		err := decodeStrict(data, &req)
		clientError(t, err)
		if err != nil {
			return
		}
		accepted(t, data)
		upd, value, err := a.prepareUpdate("u", "n", req)
		clientError(t, err)
		if err != nil {
			return
		}
		if (value == nil) != (upd.Value == nil) {
			t.Fatal("the value and its sealed form disagree")
		}
		if value != nil {
			if err := inject.ValidateValue(*value); err != nil {
				t.Fatalf("an invalid value was prepared: %v", err)
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"format":"env","content":"A=1\n"}`))
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req batchRequest
		err := decodeStrict(data, &req)
		clientError(t, err)
		if err != nil {
			return
		}
		accepted(t, data)
		var entries []batchEntry
		switch req.Format {
		case BatchFormatEnv:
			entries, err = parseEnvBatch(req.Content)
		case BatchFormatJSON:
			entries, err = parseJSONBatch(req.Content)
		case BatchFormatYAML:
			entries, err = parseYAMLBatch(req.Content)
		default:
			return
		}
		clientError(t, err)
		if err != nil {
			return
		}
		secs, err := a.prepareBatch("u", entries)
		clientError(t, err)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, s := range secs {
			if names[s.Name] {
				t.Fatalf("batch prepared two secrets named %q", s.Name)
			}
			names[s.Name] = true
			if s.EnvName != "" {
				v, _ := a.sealer.Open(s.Value, nil)
				if inject.ValidateEnvValue(string(v)) != nil {
					t.Fatal("an env secret with a binary value was prepared")
				}
			}
		}
	})
}
