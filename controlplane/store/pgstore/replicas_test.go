package pgstore_test

import (
	"bytes"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore"
	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
	"github.com/courierhq/courier/controlplane/store/storetest"
)

// replicas opens two Stores (two connection pools, as two control-plane
// replicas would have) on one fresh schema, with one user.
func replicas(t *testing.T) (a, b *pgstore.Store, userID string) {
	url := pgtest.URL(t)
	a, b = open(t, url), open(t, url)
	userID = uuid.NewString()
	if err := a.CreateUser(ctx, store.User{ID: userID, Username: "u", Email: "u@x", CreatedAt: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	return a, b, userID
}

func secret(name, env, file string) store.Secret {
	return store.Secret{ID: uuid.NewString(), Name: name, EnvName: env, FilePath: file, Value: []byte("v"),
		Format: store.FormatPlain, Enabled: true, CreatedAt: storetest.T0, UpdatedAt: storetest.T0}
}

// parallel runs 100 creates, even ones through a and odd ones through b, all
// at once, and returns how many succeeded and the errors of the others.
func parallel(a, b *pgstore.Store, userID string, mk func(i int) store.Secret, check store.CheckFunc) (int, []error) {
	var wg sync.WaitGroup
	var ok atomic.Int32
	errs := make(chan error, 100)
	start := make(chan struct{})
	for i := range 100 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := s.CreateSecrets(ctx, userID, []store.Secret{mk(i)}, check); err != nil {
				errs <- err
				return
			}
			ok.Add(1)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return int(ok.Load()), out
}

// TestPostgresCapAcrossReplicas: 100 parallel creates for one user split
// over two replicas stop at exactly 50, the cap the check enforces.
func TestPostgresCapAcrossReplicas(t *testing.T) {
	a, b, userID := replicas(t)
	capErr := errors.New("over the cap of 50 secrets")
	check := func(after []store.Secret) error {
		if len(after) > 50 {
			return capErr
		}
		return nil
	}
	ok, errs := parallel(a, b, userID, func(i int) store.Secret { return secret(fmt.Sprint("s", i), fmt.Sprint("ENV_", i), "") }, check)
	for _, err := range errs {
		if !errors.Is(err, capErr) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	for _, s := range []*pgstore.Store{a, b} {
		list, err := s.ListSecrets(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if ok != 50 || len(list) != 50 {
			t.Fatalf("created %d, stored %d; want exactly 50", ok, len(list))
		}
	}
}

// TestPostgresUniqueAcrossReplicas: 100 parallel creates of differently
// named secrets that share one env name (then one file path, then one
// name) store exactly one; the rest get the conflict naming the field.
func TestPostgresUniqueAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		field string
		mk    func(i int) store.Secret
	}{
		{"env_name", func(i int) store.Secret { return secret(fmt.Sprint("env-", i), "SHARED_ENV", "") }},
		{"file_path", func(i int) store.Secret { return secret(fmt.Sprint("file-", i), "", "~/.shared") }},
		{"name", func(i int) store.Secret { return secret("same-name", fmt.Sprint("E", i), "") }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			a, b, userID := replicas(t)
			ok, errs := parallel(a, b, userID, tc.mk, nil)
			for _, err := range errs {
				var ce *store.ConflictError
				if !errors.As(err, &ce) || ce.Field != tc.field {
					t.Fatalf("err = %v, want a conflict on %s", err, tc.field)
				}
			}
			list, err := b.ListSecrets(ctx, userID)
			if err != nil {
				t.Fatal(err)
			}
			if ok != 1 || len(list) != 1 {
				t.Fatalf("created %d, stored %d; want exactly 1", ok, len(list))
			}
		})
	}
}

// TestPostgresUpdatesAcrossReplicas: parallel updates through two replicas
// that each move a different secret onto one env name leave exactly one
// secret holding it.
func TestPostgresUpdatesAcrossReplicas(t *testing.T) {
	a, b, userID := replicas(t)
	var secs []store.Secret
	for i := range 20 {
		secs = append(secs, secret(fmt.Sprint("s", i), "", ""))
	}
	if err := a.CreateSecrets(ctx, userID, secs, nil); err != nil {
		t.Fatal(err)
	}
	env := "TAKEN"
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateSecret(ctx, userID, fmt.Sprint("s", i), store.SecretUpdate{EnvName: &env}, nil)
			var ce *store.ConflictError
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.As(err, &ce) || ce.Field != "env_name":
				t.Errorf("update %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	list, _ := a.ListSecrets(ctx, userID)
	holders := 0
	for _, s := range list {
		if s.EnvName == env {
			holders++
		}
	}
	if ok.Load() != 1 || holders != 1 {
		t.Fatalf("%d updates succeeded, %d secrets hold the env name; want 1 and 1", ok.Load(), holders)
	}
}

// TestPostgresMigrationsOnceAcrossReplicas: replicas starting together on
// an empty schema all open it, the migrations run once, and reopening
// keeps the data.
func TestPostgresMigrationsOnceAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	stores := make([]*pgstore.Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pgstore.Open(ctx, url, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	if err := stores[0].CreateUser(ctx, store.User{ID: "u1", Username: "dev", Email: "dev@x", CreatedAt: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].CreateSecrets(ctx, "u1", []store.Secret{secret("k", "K", "~/k")}, nil); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	got, err := again.GetSecret(ctx, "u1", "k")
	if err != nil || string(got.Value) != "v" || got.EnvName != "K" || !got.Enabled || got.Format != store.FormatPlain {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}

// TestPostgresPasswordNeverShown: neither the errors of a failed open nor
// the logs of a good one contain the URL's password.
func TestPostgresPasswordNeverShown(t *testing.T) {
	const canary = "CANARYpw7731"
	u, err := neturl.Parse(pgtest.ServerURL(t))
	if err != nil {
		t.Fatal("the test server URL is not a URL")
	}
	u.User = neturl.UserPassword(u.User.Username(), canary)
	for _, tc := range []struct{ url, want string }{
		{u.String(), "password authentication failed"},
		{"postgres://courier:" + canary + "@127.0.0.1:notaport/courier", "not valid"},
		{"postgres://courier:" + canary + "@127.0.0.1:1/courier?connect_timeout=2", "connect"},
		{"host=127.0.0.1 password=" + canary + " port=bad", "not valid"},
	} {
		_, err := pgstore.Open(ctx, tc.url, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Open = %v, want an error saying %q", err, tc.want)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
	var logs bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel)
	url := pgtest.URL(t)
	s, err := pgstore.Open(ctx, url, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if !strings.Contains(logs.String(), "opened PostgreSQL store") || strings.Contains(logs.String(), "courier:courier@") ||
		strings.Contains(logs.String(), url) {
		t.Fatalf("logs = %s", logs.String())
	}
}
