package rotate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/controlplane/rotate"
	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func key(t *testing.T) []byte {
	k := make([]byte, seal.KeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, keys ...[]byte) *seal.Keyring {
	t.Helper()
	kr, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func canary(name string) string { return "ROTATE-CANARY-" + name + "-d41d8" }

// fixture is a store holding, for one user, a row of every kind a real
// deployment can have.
type fixture struct {
	st         store.Store
	user       string
	oldK, newK []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "courier.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, user: "u1", oldK: key(t), newK: key(t)}
	if err := st.CreateUser(context.Background(), store.User{ID: f.user, Username: "ada", Email: "ada@x", PasswordHash: []byte("h"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	sealWith := func(k []byte, name string) []byte {
		b, err := keyring(t, k).Seal([]byte(canary(name)), seal.AD(f.user, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rows := []store.Secret{
		{Name: "legacy-plain", Value: []byte(canary("legacy-plain")), Format: store.FormatUnknown},
		{Name: "plain", Value: []byte(canary("plain")), Format: store.FormatPlain},
		{Name: "legacy-old", Value: sealWith(f.oldK, "legacy-old"), Format: store.FormatUnknown},
		{Name: "old", Value: sealWith(f.oldK, "old"), Format: store.FormatSealed},
		{Name: "new", Value: sealWith(f.newK, "new"), Format: store.FormatSealed},
	}
	for i := range rows {
		rows[i].ID = fmt.Sprintf("id-%02d", i)
		rows[i].CreatedAt, rows[i].UpdatedAt = t0, t0.Add(time.Duration(i)*time.Second)
	}
	if err := st.CreateSecrets(context.Background(), f.user, rows, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) cfg(kr *seal.Keyring, logs **observer.ObservedLogs) rotate.Config {
	c := rotate.DefaultConfig()
	c.Store, c.Keyring, c.BatchSize = f.st, kr, 2
	if logs != nil {
		core, obs := observer.New(zapcore.DebugLevel)
		*logs = obs
		c.Logger = zap.New(core)
	}
	return c
}

// check asserts every row's value, format and updated_at.
func (f *fixture) check(t *testing.T, kr *seal.Keyring, want store.ValueFormat) {
	t.Helper()
	all, err := f.st.ListSecrets(context.Background(), f.user)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range all {
		if sec.Format != want {
			t.Errorf("%s: format %d, want %d", sec.Name, sec.Format, want)
		}
		var got []byte
		if want == store.FormatSealed {
			if !kr.Current(sec.Value) {
				t.Errorf("%s is not sealed under the first key", sec.Name)
			}
			got, err = kr.Open(sec.Value, seal.AD(f.user, sec.Name))
		} else {
			got = sec.Value
		}
		if err != nil || string(got) != canary(sec.Name) {
			t.Errorf("%s: value changed (%v)", sec.Name, err)
		}
	}
	for _, sec := range all {
		id := map[string]int{"legacy-plain": 0, "plain": 1, "legacy-old": 2, "old": 3, "new": 4}[sec.Name]
		if !sec.UpdatedAt.Equal(t0.Add(time.Duration(id) * time.Second)) {
			t.Errorf("%s: updated_at changed to %v", sec.Name, sec.UpdatedAt)
		}
	}
}

func noCanary(t *testing.T, where string, text string) {
	t.Helper()
	if strings.Contains(text, "ROTATE-CANARY") {
		t.Fatalf("a value leaked into the %s", where)
	}
}

func TestResealThenUnseal(t *testing.T) {
	f := newFixture(t)
	kr := keyring(t, f.newK, f.oldK)
	var logs *observer.ObservedLogs
	rep, err := rotate.Reseal(context.Background(), f.cfg(kr, &logs))
	if err != nil {
		t.Fatal(err)
	}
	// legacy-plain, plain, legacy-old, old are rewritten; new is current.
	if rep.Scanned != 5 || rep.Changed != 4 || rep.Current != 1 || rep.Skipped != 0 || rep.Failed != 0 {
		t.Fatalf("first reseal: %+v", rep)
	}
	f.check(t, kr, store.FormatSealed)
	// Only the new key is needed from now on.
	f.check(t, keyring(t, f.newK), store.FormatSealed)
	rep, err = rotate.Reseal(context.Background(), f.cfg(keyring(t, f.newK), nil))
	if err != nil || rep.Changed != 0 || rep.Current != 5 {
		t.Fatalf("second reseal: %+v, %v; want every row current", rep, err)
	}
	var all strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&all, "%s %v\n", e.Message, e.ContextMap())
	}
	if !strings.Contains(all.String(), "batch done") {
		t.Fatal("no progress logged")
	}
	noCanary(t, "log", all.String())
	noCanary(t, "report", fmt.Sprintf("%+v %#v", rep, rep))

	rep, err = rotate.Unseal(context.Background(), f.cfg(kr, nil))
	if err != nil || rep.Changed != 5 || rep.Failed != 0 {
		t.Fatalf("unseal: %+v, %v", rep, err)
	}
	f.check(t, kr, store.FormatPlain)
	rep, err = rotate.Unseal(context.Background(), f.cfg(kr, nil))
	if err != nil || rep.Changed != 0 || rep.Current != 5 {
		t.Fatalf("second unseal: %+v, %v", rep, err)
	}
}

func TestUnsealNeedsEveryKey(t *testing.T) {
	f := newFixture(t)
	rep, err := rotate.Unseal(context.Background(), f.cfg(keyring(t, f.newK), nil))
	if err != nil {
		t.Fatal(err)
	}
	// legacy-old and old were sealed under the key not given: left as they are.
	if rep.Failed != 2 || rep.Changed != 1 || rep.Current != 2 || len(rep.FailedRows) != 2 {
		t.Fatalf("report %+v", rep)
	}
	noCanary(t, "report", fmt.Sprint(rep.FailedRows))
	if !strings.Contains(rep.FailedRows[0], `"legacy-old"`) || !strings.Contains(rep.FailedRows[1], `"old"`) {
		t.Fatalf("failed rows %q", rep.FailedRows)
	}
	got, _ := f.st.GetSecret(context.Background(), f.user, "old")
	if got.Format != store.FormatSealed {
		t.Fatal("a row that failed to open was changed")
	}
}

func TestAmbiguousLegacyRowIsLeftAlone(t *testing.T) {
	f := newFixture(t)
	// A plain value written before formats were recorded that happens to
	// have the sealed layout: it cannot be told from a value sealed by a
	// missing key, so it is reported and not touched.
	odd := append([]byte{1}, bytes.Repeat([]byte("x"), 40)...)
	if err := f.st.CreateSecrets(context.Background(), f.user, []store.Secret{{ID: "id-99", Name: "odd", Value: odd, CreatedAt: t0, UpdatedAt: t0}}, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := rotate.Reseal(context.Background(), f.cfg(keyring(t, f.newK, f.oldK), nil))
	if err != nil || rep.Failed != 1 || !strings.Contains(rep.FailedRows[0], rotate.ErrAmbiguous.Error()) {
		t.Fatalf("report %+v, %v", rep, err)
	}
	got, _ := f.st.GetSecret(context.Background(), f.user, "odd")
	if !bytes.Equal(got.Value, odd) || got.Format != store.FormatUnknown {
		t.Fatal("the ambiguous row was changed")
	}
}

// racingStore updates a secret (as a serving control plane would) just
// before the rotation's first compare-and-swap.
type racingStore struct {
	store.Store
	once sync.Once
	t    *testing.T
	kr   *seal.Keyring
}

func (r *racingStore) SwapSecretValue(ctx context.Context, id string, old, value []byte, f store.ValueFormat) (bool, error) {
	r.once.Do(func() {
		sealed, _ := r.kr.Seal([]byte("ROTATE-CANARY-concurrent"), seal.AD("u1", "legacy-plain"))
		if _, err := r.Store.UpdateSecret(ctx, "u1", "legacy-plain", store.SecretUpdate{Value: sealed, Format: store.FormatSealed,
			UpdatedAt: t0.Add(time.Hour)}, nil); err != nil {
			r.t.Errorf("concurrent update: %v", err)
		}
	})
	return r.Store.SwapSecretValue(ctx, id, old, value, f)
}

func TestConcurrentUpdateDuringResealWins(t *testing.T) {
	f := newFixture(t)
	kr := keyring(t, f.newK, f.oldK)
	cfg := f.cfg(kr, nil)
	cfg.Store = &racingStore{Store: f.st, t: t, kr: kr}
	rep, err := rotate.Reseal(context.Background(), cfg)
	if err != nil || rep.Skipped != 1 || rep.Changed != 3 {
		t.Fatalf("report %+v, %v; want the raced row skipped", rep, err)
	}
	got, _ := f.st.GetSecret(context.Background(), f.user, "legacy-plain")
	v, err := kr.Open(got.Value, seal.AD(f.user, "legacy-plain"))
	if err != nil || string(v) != "ROTATE-CANARY-concurrent" || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the concurrent update was lost (%v)", err)
	}
	rep, err = rotate.Reseal(context.Background(), f.cfg(kr, nil))
	if err != nil || rep.Skipped != 0 || rep.Changed != 0 || rep.Current != 5 {
		t.Fatalf("rerun: %+v, %v; want every row current", rep, err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]rotate.Config{
		"no store":   {Keyring: keyring(t, f.newK), BatchSize: 1},
		"no keyring": {Store: f.st, BatchSize: 1},
		"no batch":   {Store: f.st, Keyring: keyring(t, f.newK)},
	} {
		if _, err := rotate.Reseal(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// stopAfter cancels the run after n swaps, as a crash or Ctrl-C would.
type stopAfter struct {
	store.Store
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) SwapSecretValue(ctx context.Context, id string, old, value []byte, f store.ValueFormat) (bool, error) {
	if s.n--; s.n < 0 {
		s.cancel()
		return false, ctx.Err()
	}
	return s.Store.SwapSecretValue(ctx, id, old, value, f)
}

func TestInterruptedResealResumes(t *testing.T) {
	f := newFixture(t)
	kr := keyring(t, f.newK, f.oldK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := f.cfg(kr, nil)
	cfg.Store = &stopAfter{Store: f.st, n: 2, cancel: cancel}
	rep, err := rotate.Reseal(ctx, cfg)
	if err == nil || rep.Changed != 2 {
		t.Fatalf("interrupted run: %+v, %v; want 2 changed and an error", rep, err)
	}
	rep, err = rotate.Reseal(context.Background(), f.cfg(kr, nil))
	if err != nil || rep.Changed != 2 || rep.Current != 3 {
		t.Fatalf("resumed run: %+v, %v; want the 2 left changed", rep, err)
	}
	f.check(t, kr, store.FormatSealed)
}
