package controlplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/store/pgstore/pgtest"
)

// TestDatabaseOutage: a real server on PostgreSQL reached through a fault
// proxy. While the database cannot be reached, requests that need it get
// 503 with Retry-After and a message that says the database is
// unavailable (never its address), /healthz stays 200 (liveness) and
// /readyz turns 503; the outage is logged once, not per request; when the
// database is back, writes work again and the return is logged once.
func TestDatabaseOutage(t *testing.T) {
	proxied, direct, px := pgtest.URLThroughProxy(t)
	u, _ := url.Parse(direct)
	dbHost := u.Host
	logs := &syncBuffer{}
	p := startServerWith(t, logs, []string{"COURIER_POSTGRES_URL=" + proxied}, "--data-dir", filepath.Join(t.TempDir(), "unused"))
	defer p.kill()
	token := firstUserToken(t, p.url)
	create := func(name string) (int, string, http.Header) {
		req, _ := http.NewRequest("POST", p.url+"/api/v2/users/me/secrets",
			strings.NewReader(`{"name":"`+name+`","value":"outage-canary-51f3","env_name":"`+strings.ToUpper(name)+`"}`))
		req.Header.Set("Coder-Session-Token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Message, resp.Header
	}
	status := func(path string) int {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st, msg, _ := create("before"); st != 201 {
		t.Fatalf("create before the outage: %d %s", st, msg)
	}
	if status("/readyz") != 200 {
		t.Fatal("/readyz is not 200 with the database up")
	}

	// The database goes away: new connections refused, open ones cut.
	px.SetRefuse(true)
	px.ResetAll()
	for i := range 5 {
		st, msg, h := create("during")
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Fatalf("create %d during the outage: %d %q, Retry-After %q; want 503 with Retry-After", i, st, msg, h.Get("Retry-After"))
		}
		if !strings.Contains(msg, "database is unavailable") || strings.Contains(msg, dbHost) || strings.Contains(msg, px.Addr()) ||
			strings.Contains(msg, "courier:courier") {
			t.Fatalf("the 503 message %q must say the database is unavailable, without its address", msg)
		}
	}
	if status("/healthz") != 200 {
		t.Error("/healthz must stay 200 (liveness) during a database outage")
	}
	if status("/readyz") != http.StatusServiceUnavailable {
		t.Error("/readyz must be 503 during a database outage")
	}
	if n := strings.Count(logs.String(), "the database is unavailable: requests that need it get 503"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}

	// Back: writes resume within a few seconds (pgx reconnects), and the
	// return is logged once.
	px.SetRefuse(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, msg, _ := create("after")
		if st == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume after the database came back: %d %s", st, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "the database is available again"); n != 1 {
		t.Errorf("the return was logged %d times, want once", n)
	}
	if status("/readyz") != 200 {
		t.Error("/readyz is not 200 after the database came back")
	}
	if strings.Contains(logs.String(), "outage-canary-51f3") {
		t.Error("a secret value reached the log")
	}
}

// TestSQLiteStorageFull: the data directory on a small tmpfs filled to the
// last byte. A write gets 503 "the control plane's storage is full" with
// Retry-After (not 500), logged once; once space is freed writes resume
// and nothing stored before was lost.
func TestSQLiteStorageFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: this test mounts a tmpfs")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	logs := &syncBuffer{}
	p := startServerWith(t, logs, nil, "--data-dir", filepath.Join(dir, "data"))
	defer p.kill()
	token := firstUserToken(t, p.url)
	value := strings.Repeat("v", 20<<10)
	create := func(name string) (int, string, http.Header) {
		body, _ := json.Marshal(map[string]string{"name": name, "value": value, "file_path": "~/" + name})
		req, _ := http.NewRequest("POST", p.url+"/api/v2/users/me/secrets", strings.NewReader(string(body)))
		req.Header.Set("Coder-Session-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b.Message, resp.Header
	}
	if st, msg, _ := create("kept"); st != 201 {
		t.Fatalf("create before the disk fills: %d %s", st, msg)
	}
	// Fill the filesystem: write until ENOSPC.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	_ = f.Close()
	full := 0
	for i := range 4 {
		st, msg, h := create(fmt.Sprint("full-", i))
		if st == 201 {
			continue // a page was still free somewhere
		}
		if st != http.StatusServiceUnavailable || !strings.Contains(msg, "storage is full") || h.Get("Retry-After") == "" {
			t.Fatalf("create on a full disk: %d %q (Retry-After %q); want 503 storage is full", st, msg, h.Get("Retry-After"))
		}
		full++
	}
	if full == 0 {
		t.Fatal("no write failed on a full disk")
	}
	if n := strings.Count(logs.String(), "the database is unavailable: requests that need it get 503"); n != 1 {
		t.Errorf("the full disk was logged %d times, want once", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if st, msg, _ := create("after"); st != 201 {
		t.Fatalf("create after space was freed: %d %s", st, msg)
	}
	names := listNames(t, p.url, token)
	joined := strings.Join(names, " ")
	if !strings.Contains(joined, "kept") || !strings.Contains(joined, "after") {
		t.Fatalf("secrets after the episode: %v", names)
	}
}
