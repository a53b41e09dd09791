package loadtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgCluster is the replica scenario's own PostgreSQL cluster: initdb in a
// temporary directory, loopback only, fsync on (durable commits, as a
// deployment runs it), trust authentication (nothing else can reach it).
// As root, every PostgreSQL program runs as the "postgres" user, since
// PostgreSQL refuses to run as root.
type pgCluster struct {
	bin, dir string
	port     int
	started  bool
}

// errNoPostgres is returned when Debian's PostgreSQL server binaries are
// missing.
var errNoPostgres = errors.New("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")

// postgresBin returns the newest /usr/lib/postgresql/N/bin with initdb.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) < versionOf(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errNoPostgres
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// newPGCluster makes the cluster's directory (owned by "postgres" when we
// are root) and runs initdb. It starts nothing.
func newPGCluster(ctx context.Context, port int) (*pgCluster, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "courier-load-pg-")
	if err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin, dir: dir, port: port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.Join(fmt.Errorf("running PostgreSQL as root needs the postgres user: %w", err), c.remove())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, errors.Join(err, c.remove())
		}
	}
	if err := c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C.UTF-8"); err != nil {
		return nil, errors.Join(err, c.remove())
	}
	return c, nil
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// run runs a PostgreSQL program as the cluster's owner.
func (c *pgCluster) run(ctx context.Context, name string, args ...string) error {
	prog := filepath.Join(c.bin, name)
	cmd := exec.CommandContext(ctx, prog, args...)
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}

// start starts the server with room for maxConns connections and creates
// the "courier" database.
func (c *pgCluster) start(ctx context.Context, maxConns int) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=%d",
		c.port, c.dir, maxConns)
	if err := c.run(ctx, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60",
		"-o", opts, "start"); err != nil {
		return err
	}
	c.started = true
	conn, err := pgx.Connect(ctx, c.urlOf("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE courier")
	return err
}

// url is the courier database's URL; it holds no password (trust on
// loopback).
func (c *pgCluster) url() string { return c.urlOf("courier") }

func (c *pgCluster) urlOf(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// stop stops the server (fast shutdown) and removes the directory.
func (c *pgCluster) stop() error {
	var err error
	if c.started {
		err = c.run(context.Background(), "pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
		c.started = false
	}
	return errors.Join(err, c.remove())
}

func (c *pgCluster) remove() error { return os.RemoveAll(c.dir) }

// pgStats is PostgreSQL's share of the machine at one moment.
type pgStats struct {
	// Connections is the number of client backends on the courier
	// database.
	Connections int `json:"connections"`
	// Processes counts the postmaster and its children.
	Processes int `json:"processes"`
	// PSSBytes is the proportional set size summed over those processes
	// (shared buffers counted once, not once per backend as RSS would).
	PSSBytes int64 `json:"pss_bytes"`
	// CPUSecs is their CPU time, with that of exited children.
	CPUSecs float64 `json:"cpu_seconds"`
}

// stats reads pg_stat_activity and /proc.
func (c *pgCluster) stats(ctx context.Context) (pgStats, error) {
	var st pgStats
	conn, err := pgx.Connect(ctx, c.urlOf("postgres"))
	if err != nil {
		return st, err
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = 'courier' AND backend_type = 'client backend'`).Scan(&st.Connections)
	_ = conn.Close(context.Background())
	if err != nil {
		return st, err
	}
	pidFile, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return st, err
	}
	master, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	pids := append([]int{master}, childrenOf(master)...)
	st.Processes = len(pids)
	for _, pid := range pids {
		st.PSSBytes += pssOf(pid)
		if ps, err := readProc(pid); err == nil {
			st.CPUSecs += ps.CPUSecs
		}
	}
	st.CPUSecs += childCPUOf(master)
	return st, nil
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// statFields returns /proc/PID/stat's fields after the command name
// (field 3, the state, is index 0).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	return strings.Fields(string(b[i+1:]))
}

// childCPUOf is cutime+cstime: the CPU of pid's exited, waited-for
// children (backends of closed connections).
func childCPUOf(pid int) float64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseFloat(f[13], 64)
	cs, _ := strconv.ParseFloat(f[14], 64)
	return (cu + cs) / 100
}

// pssOf reads Pss from /proc/PID/smaps_rollup (0 if unreadable).
func pssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
