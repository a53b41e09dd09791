package inject

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/filewriter"
	"github.com/spf13/afero"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func secretsFixture() []Secret {
	return []Secret{
		{Name: "env-only", Value: canary + "1", EnvName: "API_KEY", UpdatedAt: t0},
		{Name: "file-only", Value: canary + "2", FilePath: "~/.config/tool/config.json", UpdatedAt: t0},
		{Name: "both", Value: canary + "3", EnvName: "SERVICE_TOKEN", FilePath: "~/.config/service/token", UpdatedAt: t0},
		{Name: "stored-only", Value: canary + "4", UpdatedAt: t0},
		{Name: "invalid", Value: canary + "5", EnvName: "PATH", UpdatedAt: t0},
		{Name: "collide-old", Value: canary + "6", FilePath: "~/config", UpdatedAt: t0},
		{Name: "collide-new", Value: canary + "7", FilePath: "/home/dev/config", UpdatedAt: t0.Add(time.Minute)},
	}
}

func applyMem(t *testing.T, m Manifest, secrets []Secret) (Report, *Plan, afero.Fs) {
	t.Helper()
	p, err := NewPlan(m, secrets)
	if err != nil {
		t.Fatal(err)
	}
	fs := afero.NewMemMapFs()
	w, err := filewriter.New(filewriter.Config{Fs: fs, Home: m.Home})
	if err != nil {
		t.Fatal(err)
	}
	return Apply(context.Background(), p, w), p, fs
}

func TestPlanAndApply(t *testing.T) {
	m := Manifest{Home: "/home/dev", Env: map[string]string{"API_KEY": "from-template"}}
	rep, p, fs := applyMem(t, m, secretsFixture())

	wantEnv := map[string]string{"API_KEY": canary + "1", "SERVICE_TOKEN": canary + "3"}
	if !reflect.DeepEqual(p.Env, wantEnv) {
		t.Errorf("env layer = %v", keys(p.Env))
	}
	want := map[string]struct{ outcome, env, path string }{
		"both":        {OutcomeWritten, "SERVICE_TOKEN", "/home/dev/.config/service/token"},
		"collide-new": {OutcomeWritten, "", "/home/dev/config"},
		"collide-old": {OutcomeCollision, "", "/home/dev/config"},
		"env-only":    {OutcomeEnvOnly, "API_KEY", ""},
		"file-only":   {OutcomeWritten, "", "/home/dev/.config/tool/config.json"},
		"invalid":     {OutcomeFailed, "", ""},
		"stored-only": {OutcomeNotInjected, "", ""},
	}
	if len(rep.Outcomes) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(rep.Outcomes), len(want))
	}
	for i, o := range rep.Outcomes {
		if i > 0 && rep.Outcomes[i-1].Name >= o.Name {
			t.Errorf("outcomes not sorted by name")
		}
		w := want[o.Name]
		if o.Outcome != w.outcome || o.EnvName != w.env || o.Path != w.path {
			t.Errorf("%s = %+v, want %+v", o.Name, o, w)
		}
	}
	if b, _ := afero.ReadFile(fs, "/home/dev/config"); string(b) != canary+"7" {
		t.Errorf("collision kept the wrong value")
	}
	dump := fmt.Sprintf("%+v %v", rep.Outcomes, rep.Warnings)
	if strings.Contains(dump, canary) {
		t.Errorf("report leaks a value: %s", dump)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), `"invalid"`) {
		t.Errorf("warnings %q do not mention the invalid secret", rep.Warnings)
	}
}

func TestFileDeliveryDisabled(t *testing.T) {
	m := Manifest{Home: "/home/dev", FileDeliveryDisabled: true}
	rep, p, fs := applyMem(t, m, []Secret{
		{Name: "both", Value: canary, EnvName: "TOKEN", FilePath: "~/t"},
		{Name: "file", Value: canary, FilePath: "~/f"},
	})
	if len(p.Files) != 0 {
		t.Fatalf("files planned although delivery is disabled")
	}
	if ok, _ := afero.Exists(fs, "/home/dev/t"); ok {
		t.Error("file written")
	}
	if rep.Outcomes[0].Outcome != OutcomeFileDisabled || rep.Outcomes[0].EnvName != "TOKEN" || p.Env["TOKEN"] != canary {
		t.Errorf("both: %+v", rep.Outcomes[0])
	}
	if rep.Outcomes[1].Outcome != OutcomeFileDisabled {
		t.Errorf("file: %+v", rep.Outcomes[1])
	}
}

// TestDisabledSecret: a paused secret sets no env, writes no file, leaves
// an old file as it is, and does not win a collision it would have won.
func TestDisabledSecret(t *testing.T) {
	m := Manifest{Home: "/home/dev"}
	p, err := NewPlan(m, []Secret{
		{Name: "paused", EnvName: "PAUSED", FilePath: "~/p", Disabled: true, UpdatedAt: t0.Add(time.Hour)},
		{Name: "older", Value: canary, FilePath: "/home/dev/p", UpdatedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Env["PAUSED"]; ok || len(p.Files) != 1 || p.Files[0].Secret != "older" {
		t.Fatalf("plan = env %v files %v; want only older's file", keys(p.Env), p.Files)
	}
	fs := afero.NewMemMapFs()
	_ = afero.WriteFile(fs, "/home/dev/q", []byte("old value"), 0o600)
	w, _ := filewriter.New(filewriter.Config{Fs: fs, Home: m.Home})
	rep := Apply(context.Background(), p, w)
	if o := rep.Outcomes[1]; o.Name != "paused" || o.Outcome != OutcomeDisabled || o.Path != "/home/dev/p" || o.EnvName != "" {
		t.Errorf("paused = %+v", o)
	}
	if o := rep.Outcomes[0]; o.Outcome != OutcomeWritten {
		t.Errorf("older = %+v; a paused secret must not take part in collisions", o)
	}
	p2, _ := NewPlan(m, []Secret{{Name: "q", FilePath: "~/q", Disabled: true}})
	if rep := Apply(context.Background(), p2, w); rep.Outcomes[0].Outcome != OutcomeDisabled {
		t.Fatalf("q = %+v", rep.Outcomes[0])
	}
	if b, _ := afero.ReadFile(fs, "/home/dev/q"); string(b) != "old value" {
		t.Errorf("a paused secret's old file changed to %q", b)
	}
}

func TestDuplicateEnvNamesSettled(t *testing.T) {
	_, p, _ := applyMem(t, Manifest{Home: "/h"}, []Secret{
		{Name: "b", Value: "new", EnvName: "X", UpdatedAt: t0.Add(time.Second)},
		{Name: "a", Value: "old", EnvName: "X", UpdatedAt: t0},
	})
	if p.Env["X"] != "new" {
		t.Errorf("X = %q, want the newest", p.Env["X"])
	}
	if len(p.Warnings) != 1 {
		t.Errorf("warnings %q", p.Warnings)
	}
}

func TestPlanNeedsHome(t *testing.T) {
	if _, err := NewPlan(Manifest{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v", err)
	}
}

func TestPlanDeterministic(t *testing.T) {
	m := Manifest{Home: "/home/dev"}
	base, _ := NewPlan(m, secretsFixture())
	for i := range 20 {
		s := secretsFixture()
		rand.New(rand.NewPCG(uint64(i), 1)).Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
		p, _ := NewPlan(m, s)
		if !reflect.DeepEqual(p, base) {
			t.Fatalf("plan depends on input order (shuffle %d)", i)
		}
	}
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func FuzzPlan(f *testing.F) {
	f.Add("a", "v", "A", "~/x", "b", "w", "A", "/home/dev/x", int64(0))
	f.Add("x", "\x00", "PATH", "rel", "x", "y", "", "~root/z", int64(5))
	f.Fuzz(func(t *testing.T, n1, v1, e1, p1, n2, v2, e2, p2 string, dt int64) {
		in := []Secret{
			{Name: n1, Value: v1, EnvName: e1, FilePath: p1, UpdatedAt: t0},
			{Name: n2, Value: v2, EnvName: e2, FilePath: p2, UpdatedAt: t0.Add(time.Duration(dt))},
		}
		m := Manifest{Home: "/home/dev"}
		p1x, err := NewPlan(m, in)
		if err != nil {
			t.Fatal(err)
		}
		p2x, _ := NewPlan(m, []Secret{in[1], in[0]})
		if !reflect.DeepEqual(p1x, p2x) {
			t.Fatal("plan depends on input order")
		}
		for name := range p1x.Env {
			if ValidateEnvName(name) != nil {
				t.Fatalf("invalid env name %q planned", name)
			}
		}
	})
}

func TestPlanStringHidesValues(t *testing.T) {
	p, _ := NewPlan(Manifest{Home: "/h"}, secretsFixture())
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprint(p.Files)} {
		if strings.Contains(s, canary) {
			t.Fatalf("formatting leaks a value: %s", s)
		}
	}
}

// TestEnvRenameLeavesFileUnchanged: renaming only a secret's env target
// rewrites nothing: the file is reported unchanged (its content is the
// same), the new env name is reported beside it, and the target is the
// path as the owner wrote it.
func TestEnvRenameLeavesFileUnchanged(t *testing.T) {
	m := Manifest{Home: "/home/dev"}
	fs := afero.NewMemMapFs()
	w, err := filewriter.New(filewriter.Config{Fs: fs, Home: m.Home})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(env string, at time.Time) SecretOutcome {
		p, err := NewPlan(m, []Secret{{Name: "both", Value: canary, EnvName: env, FilePath: "~/.tok", UpdatedAt: at}})
		if err != nil {
			t.Fatal(err)
		}
		rep := Apply(context.Background(), p, w)
		if len(rep.Outcomes) != 1 {
			t.Fatalf("outcomes %+v", rep.Outcomes)
		}
		return rep.Outcomes[0]
	}
	first := apply("OLD_NAME", t0)
	if first.Outcome != OutcomeWritten || first.Target != "~/.tok" || first.Path != "/home/dev/.tok" {
		t.Fatalf("first apply: %+v", first)
	}
	second := apply("NEW_NAME", t0.Add(time.Minute))
	if second.Outcome != OutcomeUnchanged || second.EnvName != "NEW_NAME" || second.Target != "~/.tok" {
		t.Fatalf("after an env rename: %+v, want the file unchanged and env NEW_NAME", second)
	}
}
