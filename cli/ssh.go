package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// sshUser is the user name sent in the SSH handshake. The agent runs every
// session as its own user; who may connect was already decided by the
// control plane when it accepted the session token.
const sshUser = "courier"

func newSSHCommand() *cobra.Command {
	var (
		stdio      bool
		hostPrefix string
	)
	cmd := &cobra.Command{
		Use:   "ssh WORKSPACE [-- COMMAND...]",
		Short: "Open a shell in a workspace, or run a command there",
		Long: `Connect to a workspace's agent through the control plane. WORKSPACE is a
workspace ID, one of your workspace names, or OWNER/NAME. With a command after
"--", run it and exit with its status; otherwise open an interactive shell,
with a terminal when stdin is one.

--stdio connects stdin and stdout to the workspace's SSH server instead, for
OpenSSH's ProxyCommand (see 'courier config-ssh'):

  ssh -o ProxyCommand='courier ssh --stdio %h' dev

The workspace's env secrets are set in every session.`,
		Example: `  courier ssh dev
  courier ssh dev -- env
  courier ssh alice/dev -- make test
  ssh -o ProxyCommand='courier ssh --stdio %h' dev`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			workspace := strings.TrimPrefix(args[0], hostPrefix)
			if workspace == "" {
				return errors.New("empty workspace name")
			}
			command := args[1:]
			if stdio && len(command) > 0 {
				return errors.New("--stdio takes no command")
			}
			if dash := cmd.ArgsLenAtDash(); dash > 1 {
				return fmt.Errorf("put the command after \"--\": courier ssh %s -- %s", args[0], strings.Join(args[1:], " "))
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			conn, err := c.DialSSH(cmd.Context(), workspace)
			if err != nil {
				return fmt.Errorf("connect to workspace %q: %w", workspace, err)
			}
			defer conn.Close()
			if stdio {
				return pipeStdio(cmd.Context(), conn, cmd.InOrStdin(), cmd.OutOrStdout())
			}
			return runSSH(cmd, conn, workspace, command)
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "pipe stdin/stdout to the workspace's SSH server (for ProxyCommand)")
	cmd.Flags().StringVar(&hostPrefix, "ssh-host-prefix", "", "strip this prefix from WORKSPACE (config-ssh passes \"courier.\")")
	return cmd
}

// pipeStdio copies both ways until the workspace side ends, stdin ends, or
// ctx is cancelled. Closing conn unblocks the copy from it.
func pipeStdio(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	inDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, in)
		// OpenSSH closed our stdin: it is done with the connection. Say so
		// before closing, so the reader below sees a clean finish.
		close(inDone)
		conn.Close()
	}()
	_, err := io.Copy(out, conn)
	conn.Close()
	select {
	case <-inDone:
		// We closed conn because stdin ended: a clean finish.
		return nil
	default:
	}
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workspace connection: %w", err)
	}
	return nil
}

// runSSH runs an SSH session over conn: a shell or command with the local
// terminal in raw mode when stdin is a terminal, and propagates the remote
// exit status.
func runSSH(cmd *cobra.Command, conn net.Conn, workspace string, command []string) error {
	// The connection is already authenticated end to end: TLS and the
	// session token to the control plane, and the control plane's own
	// authenticated link to this workspace's agent. The agent's host key is
	// per-process, so there is nothing stable to pin (see sshClient).
	sc, err := sshClient(conn, workspace)
	if err != nil {
		return err
	}
	defer sc.Close()
	sess, err := sc.NewSession()
	if err != nil {
		return fmt.Errorf("open ssh session: %w", err)
	}
	defer sess.Close()

	stdin, stdout := cmd.InOrStdin(), cmd.OutOrStdout()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, cmd.ErrOrStderr()

	inFd, inOK := fdOf(stdin)
	outFd, outOK := fdOf(stdout)
	interactive := inOK && outOK && term.IsTerminal(inFd) && term.IsTerminal(outFd)
	if interactive {
		w, h, err := term.GetSize(outFd)
		if err != nil {
			w, h = 80, 24
		}
		termName := os.Getenv("TERM")
		if termName == "" {
			termName = "xterm-256color"
		}
		if err := sess.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return fmt.Errorf("request terminal: %w", err)
		}
		old, err := term.MakeRaw(inFd)
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		defer func() { _ = term.Restore(inFd, old) }()
		stopResize := watchResize(cmd.Context(), outFd, func(w, h int) { _ = sess.WindowChange(h, w) })
		defer stopResize()
	}
	if len(command) > 0 {
		err = sess.Start(strings.Join(command, " "))
	} else {
		err = sess.Shell()
	}
	if err != nil {
		return fmt.Errorf("start remote session: %w", err)
	}

	var once sync.Once
	done := make(chan struct{})
	defer once.Do(func() { close(done) })
	go func() {
		select {
		case <-cmd.Context().Done():
			_ = sess.Signal(ssh.SIGTERM)
			sc.Close()
		case <-done:
		}
	}()
	err = sess.Wait()
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exitErr):
		if exitErr.ExitStatus() == 0 {
			return nil
		}
		return &exitStatusError{code: exitErr.ExitStatus(), quiet: true,
			msg: fmt.Sprintf("remote command exited with status %d", exitErr.ExitStatus())}
	case errors.As(err, &missing):
		return &exitStatusError{code: 255, msg: "the remote session ended without an exit status"}
	case cmd.Context().Err() != nil:
		return &exitStatusError{code: 130, msg: "interrupted"}
	default:
		return fmt.Errorf("ssh session: %w", err)
	}
}
