package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

// tcpForward is one --tcp LOCAL:REMOTE: a loopback port here, a port on
// the workspace's loopback there.
type tcpForward struct {
	local, remote int
}

func (f tcpForward) localAddr() string  { return net.JoinHostPort("127.0.0.1", strconv.Itoa(f.local)) }
func (f tcpForward) remoteAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(f.remote)) }

// parseTCPForward parses "LOCAL:REMOTE" or "PORT" (the same port on both
// sides).
func parseTCPForward(s string) (tcpForward, error) {
	l, r, ok := strings.Cut(s, ":")
	if !ok {
		r = l
	}
	lp, err1 := parsePort(l)
	rp, err2 := parsePort(r)
	if err := errors.Join(err1, err2); err != nil {
		return tcpForward{}, fmt.Errorf("--tcp %q: want LOCAL:REMOTE ports, like 8080:3000: %w", s, err)
	}
	if rp == 0 {
		return tcpForward{}, fmt.Errorf("--tcp %q: the workspace port cannot be 0", s)
	}
	return tcpForward{local: lp, remote: rp}, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (0-65535)", s)
	}
	return n, nil
}

func newPortForwardCommand() *cobra.Command {
	var specs []string
	cmd := &cobra.Command{
		Use:   "port-forward WORKSPACE --tcp LOCAL:REMOTE [--tcp ...]",
		Short: "Forward local ports to ports in a workspace",
		Long: `Listen on 127.0.0.1:LOCAL here and forward every connection to
127.0.0.1:REMOTE inside the workspace, over the same authenticated connection
as 'courier ssh'. --tcp may be repeated; LOCAL 0 picks a free port. Runs until
Ctrl-C. The workspace's template can turn forwarding off; connections are then
refused and the reason printed.`,
		Example: `  courier port-forward dev --tcp 8080:3000
  courier port-forward dev --tcp 8080 --tcp 5432:5432`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(specs) == 0 {
				return errors.New("give at least one --tcp LOCAL:REMOTE")
			}
			var fwds []tcpForward
			for _, s := range specs {
				f, err := parseTCPForward(s)
				if err != nil {
					return err
				}
				fwds = append(fwds, f)
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			workspace := args[0]
			conn, err := c.DialSSH(cmd.Context(), workspace)
			if err != nil {
				return fmt.Errorf("connect to workspace %q: %w", workspace, err)
			}
			sc, err := sshClient(conn, workspace)
			if err != nil {
				return err
			}
			defer sc.Close()
			return portForward(cmd.Context(), sc, fwds, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringArrayVar(&specs, "tcp", nil, "LOCAL:REMOTE ports to forward (repeatable)")
	return cmd
}

// sshClient runs the SSH handshake over conn (see runSSH for why the host
// key is not checked).
func sshClient(conn net.Conn, workspace string) (*ssh.Client, error) {
	sshConn, chans, reqs, err := ssh.NewClientConn(conn, workspace, &ssh.ClientConfig{
		User:            sshUser,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // authenticated by the control plane, see runSSH
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh handshake with workspace %q: %w", workspace, err)
	}
	return ssh.NewClient(sshConn, chans, reqs), nil
}

// portForward listens for every forward, serves until ctx ends (a clean
// exit) or the workspace connection drops (an error), then closes the
// listeners and waits for open connections to finish closing.
func portForward(ctx context.Context, sc *ssh.Client, fwds []tcpForward, out, errOut io.Writer) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	for _, f := range fwds {
		ln, err := net.Listen("tcp", f.localAddr())
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", f.localAddr(), err)
		}
		lns = append(lns, ln)
		fmt.Fprintf(out, "Forwarding %s -> workspace %s\n", ln.Addr(), f.remoteAddr())
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex // mu guards writes to errOut
		say = func(format string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(errOut, format+"\n", a...)
		}
	)
	connDone := make(chan error, 1)
	go func() { connDone <- sc.Wait() }()
	for i, f := range fwds {
		ln := lns[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					forwardOne(ctx, sc, c, f, say)
				}()
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case werr := <-connDone:
		err = fmt.Errorf("the workspace connection ended: %v", werr)
	}
	closeAll()
	_ = sc.Close()
	wg.Wait()
	return err
}

// forwardOne carries one local connection to the workspace port.
func forwardOne(ctx context.Context, sc *ssh.Client, c net.Conn, f tcpForward, say func(string, ...any)) {
	defer c.Close()
	rc, err := sc.Dial("tcp", f.remoteAddr())
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			say("forward to workspace port %d refused: %s", f.remote, oce.Message)
		} else {
			say("forward to workspace port %d: %v", f.remote, err)
		}
		return
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = rc.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(rc, c)
		halfClose(rc)
		close(done)
	}()
	_, _ = io.Copy(c, rc)
	halfClose(c)
	<-done
}

func halfClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
