package envmerge

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const canary = "CANARY-7f3a9c-do-not-leak"

func TestMergePrecedence(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		layers  Layers
		want    []string
		sources map[string]string
		warn    string
	}{
		{
			name: "secrets beat template, template beats base",
			opts: Options{},
			layers: Layers{
				Base:     []string{"A=base", "B=base", "C=base"},
				Template: map[string]string{"B": "tmpl", "C": "tmpl"},
				Secrets:  map[string]string{"C": "secret"},
			},
			want:    []string{"A=base", "B=tmpl", "C=secret"},
			sources: map[string]string{"A": LayerBase, "B": LayerTemplate, "C": LayerSecret},
		},
		{
			name: "session beats secrets and warns without the value",
			layers: Layers{
				Secrets: map[string]string{"HOME": canary},
				Session: map[string]string{"HOME": "/home/dev"},
			},
			want:    []string{"HOME=/home/dev"},
			sources: map[string]string{"HOME": LayerSession},
			warn:    "secret env HOME is shadowed",
		},
		{
			name: "private names and prefixes dropped from base only",
			opts: DefaultOptions(),
			layers: Layers{
				Base:     []string{"COURIER_AGENT_TOKEN=" + canary, "COURIER_AGENT_URL=http://x", "COURIER_URL=keep", "X=1"},
				Template: map[string]string{},
			},
			want: []string{"COURIER_URL=keep", "X=1"},
		},
		{
			name:   "base entries without '=' or with an empty name are dropped",
			layers: Layers{Base: []string{"NOEQ", "=C:=C:\\", "OK=1", "EMPTY="}},
			want:   []string{"EMPTY=", "OK=1"},
		},
		{
			name:   "last duplicate in base wins, like os/exec",
			layers: Layers{Base: []string{"A=1", "A=2"}},
			want:   []string{"A=2"},
		},
		{
			name:   "linux: names differing in case are distinct",
			opts:   Options{FoldCase: false},
			layers: Layers{Base: []string{"PATH=/bin"}, Secrets: map[string]string{"Path": "x"}},
			want:   []string{"PATH=/bin", "Path=x"},
		},
		{
			name:    "windows: Path and PATH are one; first spelling kept, later value wins",
			opts:    Options{FoldCase: true},
			layers:  Layers{Base: []string{"Path=C:\\bin"}, Template: map[string]string{"PATH": "D:\\tools"}},
			want:    []string{"Path=D:\\tools"},
			sources: map[string]string{"Path": LayerTemplate},
		},
		{
			name: "windows: private names fold too",
			opts: Options{FoldCase: true, Private: []string{"COURIER_AGENT_*"}},
			layers: Layers{
				Base: []string{"courier_agent_token=" + canary, "Keep=1"},
			},
			want: []string{"Keep=1"},
		},
		{
			name: "output sorted whatever the input order",
			layers: Layers{
				Base:     []string{"Z=1", "M=1"},
				Template: map[string]string{"B": "1", "Y": "1"},
				Secrets:  map[string]string{"A": "1"},
			},
			want: []string{"A=1", "B=1", "M=1", "Y=1", "Z=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Merge(tt.opts, tt.layers)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if !reflect.DeepEqual(res.Env, tt.want) {
				t.Errorf("Env = %q, want %q", res.Env, tt.want)
			}
			for k, v := range tt.sources {
				if res.Effective()[k] != v {
					t.Errorf("Effective()[%s] = %q, want %q", k, res.Effective()[k], v)
				}
			}
			joined := strings.Join(res.Warnings, "\n")
			if tt.warn != "" && !strings.Contains(joined, tt.warn) {
				t.Errorf("warnings %q lack %q", joined, tt.warn)
			}
			if tt.warn == "" && len(res.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", res.Warnings)
			}
			if strings.Contains(joined, canary) || strings.Contains(fmt.Sprint(res.Effective()), canary) {
				t.Errorf("canary leaked into warnings or sources")
			}
		})
	}
}

func TestMergeRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		layers Layers
		want   string
	}{
		{"NUL in secret value", Layers{Secrets: map[string]string{"TOKEN": canary + "\x00x"}}, "TOKEN in the secret layer"},
		{"NUL in template value", Layers{Template: map[string]string{"T": canary + "\x00"}}, "T in the template layer"},
		{"= in name", Layers{Template: map[string]string{"A=B": canary}}, "contains '=' or NUL"},
		{"NUL in name", Layers{Session: map[string]string{"A\x00": canary}}, "session layer"},
		{"empty name", Layers{Secrets: map[string]string{"": canary}}, "empty name in the secret layer"},
		{"NUL in base value", Layers{Base: []string{"B=" + canary + "\x00"}}, "B in the base layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Merge(Options{}, tt.layers)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the value: %q", err)
			}
		})
	}
}

func TestBudget(t *testing.T) {
	base := []string{"A=" + strings.Repeat("a", 91)} // 94 bytes with the NUL
	res, err := Merge(Options{BudgetBytes: 100}, Layers{Base: base})
	if err != nil || res.OverBudget || res.Bytes != 94 {
		t.Fatalf("under budget: bytes=%d over=%v err=%v", res.Bytes, res.OverBudget, err)
	}
	res, err = Merge(Options{BudgetBytes: 100}, Layers{Base: base, Secrets: map[string]string{"S": canary}})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := 94 + len("S=") + len(canary) + 1
	if !res.OverBudget || res.Bytes != wantBytes {
		t.Fatalf("bytes=%d over=%v, want %d true", res.Bytes, res.OverBudget, wantBytes)
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, fmt.Sprintf("%d over the 100-byte budget", wantBytes-100)) || !strings.Contains(w, "env secrets") {
		t.Errorf("warning %q does not say by how much and that secrets pushed it over", w)
	}
	if strings.Contains(w, canary) {
		t.Error("budget warning leaks a value")
	}
	if _, err := Merge(Options{BudgetBytes: -1}, Layers{}); !errors.Is(err, ErrOptions) {
		t.Errorf("negative budget: err = %v", err)
	}
	if _, err := Merge(Options{Private: []string{"*"}}, Layers{}); !errors.Is(err, ErrOptions) {
		t.Errorf("private '*': err = %v", err)
	}
}

func TestDefaultBudget(t *testing.T) {
	big := strings.Repeat("x", DefaultBudgetBytes)
	res, err := Merge(Options{}, Layers{Template: map[string]string{"BIG": big}})
	if err != nil || !res.OverBudget {
		t.Fatalf("zero BudgetBytes should mean %d: over=%v err=%v", DefaultBudgetBytes, res.OverBudget, err)
	}
}

// checkInvariants holds for every successful merge.
func checkInvariants(t *testing.T, o Options, l Layers, res Result) {
	t.Helper()
	key := func(s string) string { return s }
	if o.FoldCase {
		key = strings.ToUpper
	}
	seen := map[string]bool{}
	got := map[string]string{}
	for _, kv := range res.Env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			t.Fatalf("malformed entry %q", kv)
		}
		if seen[key(name)] {
			t.Fatalf("duplicate name %q", name)
		}
		seen[key(name)] = true
		got[key(name)] = value
		if isPrivate(o, name) && res.Effective()[name] == LayerBase {
			t.Fatalf("private %q survived", name)
		}
	}
	for _, m := range []map[string]string{l.Session} {
		for k, v := range m {
			if got[key(k)] != v && !foldDup(o, m, k) {
				t.Fatalf("session %q not applied", k)
			}
		}
	}
	for k, v := range l.Secrets {
		if _, inSession := lookupFold(o, l.Session, k); inSession || foldDup(o, l.Secrets, k) {
			continue
		}
		if got[key(k)] != v {
			t.Fatalf("secret %q lost", k)
		}
	}
}

func lookupFold(o Options, m map[string]string, k string) (string, bool) {
	for mk, v := range m {
		if mk == k || (o.FoldCase && strings.EqualFold(mk, k)) {
			return v, true
		}
	}
	return "", false
}

func foldDup(o Options, m map[string]string, k string) bool {
	if !o.FoldCase {
		return false
	}
	for mk := range m {
		if mk != k && strings.EqualFold(mk, k) {
			return true
		}
	}
	return false
}

func FuzzMerge(f *testing.F) {
	f.Add("PATH=/bin\nHOME=/root", "A", "1", "A", "2", "HOME", "/h", false)
	f.Add("Path=C:\\x", "PATH", "y", "path", "z", "TERM", "xterm", true)
	f.Add("COURIER_AGENT_TOKEN=t\n=C:=C:\\", "COURIER_AGENT_X", "1", "B", "\x00", "S", "", true)
	f.Fuzz(func(t *testing.T, base, tk, tv, sk, sv, ek, ev string, fold bool) {
		o := DefaultOptions()
		o.FoldCase = fold
		l := Layers{
			Base:     strings.Split(base, "\n"),
			Template: map[string]string{tk: tv},
			Secrets:  map[string]string{sk: sv},
			Session:  map[string]string{ek: ev},
		}
		res, err := Merge(o, l)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		checkInvariants(t, o, l, res)
		again, _ := Merge(o, l)
		if !reflect.DeepEqual(res.Env, again.Env) {
			t.Fatal("not deterministic")
		}
	})
}

func BenchmarkMerge(b *testing.B) {
	tmpl := make(map[string]string, 1000)
	for i := range 1000 {
		tmpl[fmt.Sprintf("TEMPLATE_VAR_%04d", i)] = strings.Repeat("v", 20)
	}
	secrets := make(map[string]string, 50)
	for i := range 50 {
		secrets[fmt.Sprintf("SECRET_%02d", i)] = strings.Repeat("s", 100)
	}
	l := Layers{Base: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, Template: tmpl, Secrets: secrets,
		Session: map[string]string{"HOME": "/home/dev", "USER": "dev", "SHELL": "/bin/bash"}}
	o := DefaultOptions()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Merge(o, l); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPreparedWithMatchesMerge: preparing once and adding a session layer
// per process gives exactly what a full Merge gives, and does not change
// the Prepared (it is shared by concurrent spawns).
func TestPreparedWithMatchesMerge(t *testing.T) {
	for _, fold := range []bool{false, true} {
		o := DefaultOptions()
		o.FoldCase = fold
		l := Layers{
			Base:     []string{"PATH=/bin", "HOME=/root", "Lang=x", "COURIER_AGENT_TOKEN=" + canary},
			Template: map[string]string{"A": "t", "TERM": "dumb"},
			Secrets:  map[string]string{"A": "s", "SECRET_ONLY": canary},
		}
		p, err := Prepare(o, l)
		if err != nil {
			t.Fatal(err)
		}
		before := fmt.Sprint(p.env, p.keys, p.layers)
		for _, session := range []map[string]string{
			nil,
			{"HOME": "/home/dev", "USER": "dev"},
			{"TERM": "xterm", "ZZZ": "last", "AAA": "first", "lang": "y"},
			{"SECRET_ONLY": "session wins"},
		} {
			got, err := p.With(session)
			if err != nil {
				t.Fatal(err)
			}
			l.Session = session
			want, err := Merge(o, l)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Env, want.Env) || got.Bytes != want.Bytes || !reflect.DeepEqual(got.Effective(), want.Effective()) ||
				!reflect.DeepEqual(got.Warnings, want.Warnings) {
				t.Errorf("fold=%v session=%v:\n With  %q %d %v\n Merge %q %d %v", fold, session, got.Env, got.Bytes, got.Warnings, want.Env, want.Bytes, want.Warnings)
			}
			if !sort.StringsAreSorted(got.Env) && !fold {
				t.Errorf("unsorted: %q", got.Env)
			}
		}
		if fmt.Sprint(p.env, p.keys, p.layers) != before {
			t.Fatal("With changed the Prepared")
		}
	}
}

// BenchmarkPreparedWith is the per-process cost once the layers are
// prepared: 1,000 template vars + 50 secrets, plus a session layer.
func BenchmarkPreparedWith(b *testing.B) {
	tmpl := make(map[string]string, 1000)
	for i := range 1000 {
		tmpl[fmt.Sprintf("TEMPLATE_VAR_%04d", i)] = strings.Repeat("v", 20)
	}
	secrets := make(map[string]string, 50)
	for i := range 50 {
		secrets[fmt.Sprintf("SECRET_%02d", i)] = strings.Repeat("s", 100)
	}
	p, err := Prepare(DefaultOptions(), Layers{Base: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, Template: tmpl, Secrets: secrets})
	if err != nil {
		b.Fatal(err)
	}
	session := map[string]string{"HOME": "/home/dev", "USER": "dev", "SHELL": "/bin/bash", "TERM": "xterm-256color"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.With(session); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFormattingHidesValues(t *testing.T) {
	l := Layers{Secrets: map[string]string{"S": canary}}
	res, _ := Merge(Options{}, l)
	p, _ := Prepare(Options{}, l)
	for _, s := range []string{fmt.Sprint(l), fmt.Sprintf("%+v", l), fmt.Sprint(res), fmt.Sprintf("%+v", res), fmt.Sprint(p)} {
		if strings.Contains(s, canary) {
			t.Fatalf("formatting leaks a value: %s", s)
		}
	}
}
