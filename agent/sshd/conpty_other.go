//go:build !windows

package sshd

import (
	"context"

	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/spawn"
)

// conPTY is false: Unix terminals are ptys (runPty).
const conPTY = false

// runConPTY is never called outside Windows.
func (s *Server) runConPTY(context.Context, gliderssh.Session, spawn.Spec, gliderssh.Window, <-chan gliderssh.Window, <-chan gliderssh.Signal, *zap.Logger) exitResult {
	panic("sshd: runConPTY outside Windows")
}
