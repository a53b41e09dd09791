package sshd

import (
	"errors"
	"io"
	"os"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

// handleSFTP serves the "sftp" subsystem (sftp, and scp, which speaks SFTP
// in current OpenSSH): it runs Config.SFTPCommand through the spawner like
// any session, so the SFTP server has the session's env (secrets included)
// and starts in the home directory.
func (s *Server) handleSFTP(sess gliderssh.Session) {
	if !s.enter() {
		_ = sess.Exit(exitStartFailed)
		return
	}
	defer s.sessions.Done()
	sigs := make(chan gliderssh.Signal, 16)
	sess.Signals(sigs)
	defer sess.Signals(nil)

	log := s.log.With(zap.String("kind", kindSFTP), zap.String("remote", sess.RemoteAddr().String()))
	log.Debug("ssh subsystem started", zap.String("subsystem", "sftp"))
	s.event(sess.Context(), proto.SSHSFTP, "")
	spec := spawn.Spec{
		Path:    s.cfg.SFTPCommand[0],
		Args:    s.cfg.SFTPCommand[1:],
		Session: s.sessionVars(sess),
		Client:  s.clientEnv(sess.Environ(), log),
		Unset:   starterVars,
	}
	res := s.runPlain(sess.Context(), sess, spec, sigs, log)
	result := resultOK
	if res.code == exitStartFailed && res.signal == "" {
		result = resultFailed
	}
	s.metrics.inc(kindSFTP, result)
	log.Debug("ssh subsystem ended", zap.String("subsystem", "sftp"), zap.Int("exit_status", res.code), zap.String("exit_signal", res.signal))
	sendExit(sess, res)
}

// ServeSFTP serves the SFTP protocol on in and out until the client is
// done, resolving relative paths against dir. courier-agent runs it in a
// child process ("courier-agent sftp-server") that the SSH server starts
// through the spawner for each sftp subsystem request; it makes dir the
// process's working directory, as OpenSSH's sftp-server runs in the home.
// The working directory, not pkg/sftp's option for one: that option also
// joins a symlink's relative target onto it, so `symlink f sub/lnk` made
// sub/lnk point at $HOME/f (absolute, dangling) where sshd makes "f".
func ServeSFTP(in io.Reader, out io.WriteCloser, dir string) error {
	if err := os.Chdir(dir); err != nil {
		return err
	}
	srv, err := sftp.NewServer(stdio{Reader: in, WriteCloser: out})
	if err != nil {
		return err
	}
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// stdio joins a reader and a writer into the ReadWriteCloser pkg/sftp
// serves on.
type stdio struct {
	io.Reader
	io.WriteCloser
}
