package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnv(t *testing.T) {
	bindings := []envBinding{{"listen", "COURIER_LISTEN"}, {"off", "COURIER_OFF"}}
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		wantListen string
		wantOff    bool
		wantErr    string
	}{
		{"defaults", nil, nil, ":8080", false, ""},
		{"env applies", nil, map[string]string{"COURIER_LISTEN": ":9", "COURIER_OFF": "true"}, ":9", true, ""},
		{"flag wins over env", []string{"--listen", ":1"}, map[string]string{"COURIER_LISTEN": ":9"}, ":1", false, ""},
		{"empty env still counts", nil, map[string]string{"COURIER_LISTEN": ""}, "", false, ""},
		{"bad bool", nil, map[string]string{"COURIER_OFF": "maybe"}, ":8080", false, "$COURIER_OFF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			listen := fs.String("listen", ":8080", "")
			off := fs.Bool("off", false, "")
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			err := applyEnv(fs, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, bindings)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || *listen != c.wantListen || *off != c.wantOff {
				t.Fatalf("listen %q off %v err %v", *listen, *off, err)
			}
		})
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	if err := applyEnv(fs, func(string) (string, bool) { return "", false }, bindings); err == nil {
		t.Fatal("binding to a missing flag was accepted")
	}
}

func TestServerCommandFlags(t *testing.T) {
	cmd := newServerCommand()
	for _, b := range serverEnv {
		f := cmd.Flags().Lookup(b.Flag)
		if f == nil {
			t.Fatalf("no flag --%s", b.Flag)
		}
		if !strings.Contains(f.Usage, "$"+b.Env) {
			t.Errorf("--%s usage does not name $%s", b.Flag, b.Env)
		}
	}
}

// TestServerBadPostgresURL: a server given a PostgreSQL URL it cannot use
// fails to start with an error that names the database but never the
// password, from the flag or the environment.
func TestServerBadPostgresURL(t *testing.T) {
	const pw = "PGCANARY-3d9"
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"flag", []string{"--postgres-url", "postgres://courier:" + pw + "@127.0.0.1:1/courier?connect_timeout=2"}, "", "courier@127.0.0.1:1/courier"},
		{"env", nil, "postgres://courier:" + pw + "@127.0.0.1:1/courier?connect_timeout=2", "courier@127.0.0.1:1/courier"},
		{"unparsable", []string{"--postgres-url", "postgres://courier:" + pw + "@127.0.0.1:notaport/courier"}, "", "PostgreSQL URL is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COURIER_POSTGRES_URL", tc.env)
			if tc.env == "" {
				os.Unsetenv("COURIER_POSTGRES_URL")
			}
			cmd := newServerCommand()
			var out strings.Builder
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "console"}, tc.args...))
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(out.String(), pw) {
				t.Fatalf("the password is shown: %v\n%s", err, out.String())
			}
		})
	}
}

// TestAuditRetentionFlagSaysItsMinimum: --audit-retention below a day is
// refused by the flag itself, naming the day, whatever the value (10s and
// 2m used to get two different minimums); a day and "never" are taken.
func TestAuditRetentionFlagSaysItsMinimum(t *testing.T) {
	for _, v := range []string{"10s", "2m", "23h"} {
		cmd := newServerCommand()
		err := cmd.Flags().Set("audit-retention", v)
		if err == nil || !strings.Contains(err.Error(), "must be at least 1d") {
			t.Errorf("--audit-retention %s: err = %v, want the one-day minimum", v, err)
		}
	}
	for _, v := range []string{"1d", "400d", "never", "0"} {
		if err := newServerCommand().Flags().Set("audit-retention", v); err != nil {
			t.Errorf("--audit-retention %s refused: %v", v, err)
		}
	}
}
