package conn

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/inject"
)

// Fuzz targets for the agent's decoding of the control plane's answers, the
// path every byte from a broken or malicious control plane takes. Seed
// corpora live in testdata/fuzz/<target>/; .ci/run runs each for a bounded
// number of inputs (a count, since a duration trips golang/go#75804):
//
//	go test -run '^$' -fuzz '^FuzzDecodeSecrets$' -fuzztime 10000x ./agent/conn

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"workspace_id":"w","env":{"A":"1"},"scripts":[{"name":"s","script":"true"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m proto.Manifest
		err := decodeAnswer(bytes.NewReader(data), &m)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error does not wrap ErrBadAnswer: %v", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatal("an answer with invalid UTF-8 was accepted")
		}
		if _, err := inject.NewPlan(inject.Manifest{Home: "/home/dev", Env: m.Env}, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeSecrets(f *testing.F) {
	f.Add([]byte(`{"secrets":[{"id":"1","name":"k","value_base64":"/wA=","file_path":"~/k","updated_at":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r proto.SecretsResponse
		err := decodeAnswer(bytes.NewReader(data), &r)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error does not wrap ErrBadAnswer: %v", err)
			}
			return
		}
		// As agent.apply does: an encoding error refuses the whole answer.
		secrets := make([]inject.Secret, 0, len(r.Secrets))
		for _, p := range r.Secrets {
			v, err := p.RawValue()
			if err != nil {
				if !errors.Is(err, proto.ErrValueEncoding) {
					t.Fatalf("error does not wrap ErrValueEncoding: %v", err)
				}
				return
			}
			secrets = append(secrets, inject.Secret{ID: p.ID, Name: p.Name, Value: v, EnvName: p.EnvName,
				FilePath: p.FilePath, UpdatedAt: p.UpdatedAt})
		}
		plan, err := inject.NewPlan(inject.Manifest{Home: "/home/dev"}, secrets)
		if err != nil {
			t.Fatal(err)
		}
		// Whatever the control plane sent, the plan holds only what the
		// rules allow: valid paths, env names and text env values.
		for _, fl := range plan.Files {
			if inject.ValidateFilePath(fl.Path) != nil || inject.ValidateName(fl.Secret) != nil {
				t.Fatalf("the plan writes a refused path or secret (%q)", fl.Secret)
			}
		}
		for name, v := range plan.Env {
			if inject.ValidateEnvName(name) != nil || inject.ValidateEnvValue(v) != nil {
				t.Fatalf("the plan sets a refused env %q", name)
			}
		}
		if strings.Contains(plan.String(), "\x00") {
			t.Fatal("plan printed a NUL")
		}
	})
}
