package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/agent/sshd"
	"github.com/courierhq/courier/controlplane"
)

// devOptions are the flags of `courier dev`.
type devOptions struct {
	stateDir  string
	listen    string
	liveFiles bool
}

func newDevCommand() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a control plane, a dev user, a workspace and its agent on this machine",
		Long: `Run Courier's whole path on one machine: a control plane on an embedded
store, a dev user, a workspace "dev" with a small template, and a real agent
for it whose home is a sandbox directory under the state directory (never your
own home). File secrets land only inside the state directory: an absolute
path or "~/.." that leads out of it is refused (reported as failed), so a
secret tried here cannot overwrite a file of your machine. A second run
reuses the state. Ctrl-C stops everything.

Logs go to files in the state directory: server.log and agent.log.`,
		Example: `  courier dev
  courier dev --state-dir /tmp/courier-dev --listen 127.0.0.1:7081
  courier dev --live-files # the agent re-applies as soon as a secret changes
  courier dev restart      # from another terminal: restart the agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	cmd.PersistentFlags().StringVar(&o.stateDir, "state-dir", ".courier-dev", "where the control plane, the agent and the sandbox home keep their state")
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:7080", "address of the control plane (127.0.0.1:0 picks a free port)")
	cmd.Flags().BoolVar(&o.liveFiles, "live-files", false, "run the agent with live files: a changed secret is applied at once (files, env for new processes), not at the next restart")
	cmd.AddCommand(&cobra.Command{
		// The dev agent's SSH server runs `courier dev sftp-server` for each
		// sftp subsystem request (scp and sftp), as courier-agent runs
		// `courier-agent sftp-server`.
		Use:    devSFTPServerArg,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			return sshd.ServeSFTP(os.Stdin, os.Stdout, dir)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "restart",
		Short:   "Restart the agent of a running `courier dev`, so it applies your secrets again",
		Example: "  courier dev restart",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return restartDevAgent(o.stateDir, cmd.OutOrStdout())
		},
	})
	return cmd
}

// devSFTPServerArg is the hidden `courier dev` subcommand that serves SFTP
// on stdin and stdout for the dev agent.
const devSFTPServerArg = "sftp-server"

func runDev(ctx context.Context, o devOptions, out io.Writer) error {
	dir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	serverLog, err := fileLogger(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer func() { _ = serverLog.Sync() }()
	agentLog, err := fileLogger(filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	defer func() { _ = agentLog.Sync() }()

	cfg := controlplane.DefaultConfig()
	cfg.Listen, cfg.DataDir = o.listen, filepath.Join(dir, "server")
	srv, err := controlplane.New(cfg, serverLog)
	if err != nil {
		return err
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	defer func() { _ = srv.Close(); <-srvDone }()

	st, err := bootstrapDev(ctx, srv.URL(), dir)
	if err != nil {
		return fmt.Errorf("setting up the dev user and workspace: %w", err)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	pidFile := filepath.Join(dir, "dev.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	defer os.Remove(pidFile)
	printDevBanner(out, srv.URL(), st, dir)

	// scp and sftp: the agent's SSH server runs this executable's hidden
	// SFTP server for each subsystem request.
	var sftpCommand []string
	if exe, err := os.Executable(); err == nil {
		sftpCommand = []string{exe, "dev", devSFTPServerArg}
	} else {
		agentLog.Warn("sftp and scp are unavailable: cannot find this executable", zap.Error(err))
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		a, err := agent.New(agent.Config{URL: srv.URL(), Token: st.AgentToken, Home: home,
			DataDir: filepath.Join(dir, "agent"), Logger: agentLog, MaxBackoff: 5 * time.Second, Version: version,
			LiveFiles: o.liveFiles, SFTPCommand: sftpCommand, Confine: dir})
		if err != nil {
			return err
		}
		agentCtx, stopAgent := context.WithCancel(ctx)
		agentDone := make(chan error, 1)
		go func() { agentDone <- a.Run(agentCtx) }()
		fmt.Fprintln(out, "agent started (logs: "+filepath.Join(dir, "agent.log")+")")
		select {
		case <-ctx.Done():
			stopAgent()
			<-agentDone
			fmt.Fprintln(out, "\nstopped; state kept in "+dir)
			return nil
		case err := <-srvDone:
			stopAgent()
			<-agentDone
			srvDone <- err // for the deferred wait
			return err
		case <-hup:
			stopAgent()
			if err := <-agentDone; err != nil {
				return err
			}
			fmt.Fprintln(out, "restarting the agent: secrets are fetched and applied again")
		}
	}
}

func printDevBanner(out io.Writer, url string, st devState, dir string) {
	self := "courier"
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		self = "go run ./cmd/courier"
	}
	fmt.Fprintf(out, `Courier dev is running.

  control plane   %s
  user            %s (password in %s)
  workspace       dev, agent home %s
  dashboard       %s/login
                  log in as %s with the "password" of %s

In another terminal:

  export COURIER_URL=%s COURIER_SESSION_TOKEN=%s

  # 1. create a secret (stdin is stored verbatim; quote ~ so your shell leaves it alone)
  echo -n "hello-from-courier" | %s secret create greeting --env GREETING_SECRET --file '~/.config/dev/greeting'

  # 2. restart the agent: it fetches and applies secrets on every start
  %s dev restart --state-dir %s

  # 3. open a shell in the workspace and see it
  %s ssh dev -- 'echo $GREETING_SECRET; cat ~/.config/dev/greeting'

Press Ctrl-C to stop.
`, url, devUser, filepath.Join(dir, devStateFile), filepath.Join(dir, "home"),
		url, devUser, filepath.Join(dir, devStateFile), url, st.SessionToken,
		self, self, dir, self)
}

// restartDevAgent signals a running `courier dev` (found by its pid file)
// to restart its agent.
func restartDevAgent(stateDir string, out io.Writer) error {
	b, err := os.ReadFile(filepath.Join(stateDir, "dev.pid"))
	if err != nil {
		return fmt.Errorf("no running courier dev found in %s: %w", stateDir, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("malformed pid file in %s", stateDir)
	}
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Signal(syscall.SIGHUP)
	}
	if err != nil {
		return fmt.Errorf("signalling courier dev (pid %d): %w", pid, err)
	}
	fmt.Fprintln(out, "asked courier dev to restart its agent")
	return nil
}

// fileLogger returns a JSON logger appending to path.
func fileLogger(path string) (*zap.Logger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), zap.InfoLevel)), nil
}

var errDevState = errors.New("dev state")
