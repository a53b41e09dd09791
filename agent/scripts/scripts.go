// Package scripts runs a workspace's startup scripts and supervises its apps:
// every process through the agent's one spawner, every line of output to a
// LogSink.
package scripts

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

// Errors returned by this package, wrapped with %w.
var (
	// ErrScriptFailed means a startup script exited with a non-zero status
	// or could not be started; the *ScriptError says which and how.
	ErrScriptFailed = errors.New("startup script failed")
	// ErrScriptTimeout means a startup script ran past its timeout and was
	// stopped.
	ErrScriptTimeout = errors.New("startup script timed out")
	// ErrInvalidConfig is returned by SupervisorConfig.Validate.
	ErrInvalidConfig = errors.New("scripts: invalid config")
)

// ScriptError describes the script that stopped RunScripts. Its message
// names the script and its exit status or timeout, never its output.
type ScriptError struct {
	// Name is the script's name; Index its position in the manifest.
	Name  string
	Index int
	// ExitCode is the exit status, -1 when killed by a signal or not
	// started.
	ExitCode int
	// Timeout is the script's timeout when it ran past it, else 0.
	Timeout time.Duration
	// Err is the underlying error.
	Err error
}

// Error names the script and how it failed.
func (e *ScriptError) Error() string {
	switch {
	case e.Timeout > 0:
		return fmt.Sprintf("startup script %q timed out after %v and was stopped", e.Name, e.Timeout)
	case e.ExitCode >= 0:
		return fmt.Sprintf("startup script %q exited with status %d", e.Name, e.ExitCode)
	default:
		return fmt.Sprintf("startup script %q failed: %v", e.Name, e.Err)
	}
}

// Unwrap returns ErrScriptTimeout or ErrScriptFailed, and the cause.
func (e *ScriptError) Unwrap() []error {
	if e.Timeout > 0 {
		return []error{ErrScriptTimeout, e.Err}
	}
	return []error{ErrScriptFailed, e.Err}
}

// RunScripts runs scripts one after another, in order, each as
// `Shell -c SCRIPT` built by sp (so it waits for sp's first Update and gets
// the merged env). Each script's output goes to sink line by line under
// source "script:NAME". A script with TimeoutSeconds > 0 is stopped when it
// runs longer (SIGTERM to its process group, SIGKILL after the spawner's
// WaitDelay).
//
// RunScripts stops at the first script that fails, times out or cannot be
// started, and returns a *ScriptError for it (errors.Is ErrScriptFailed or
// ErrScriptTimeout); later scripts do not run, because a startup sequence
// usually depends on its earlier steps. It returns ctx's error, wrapped, when
// ctx ends first. A script that exits 0 while a background child still holds
// its output open counts as success once the WaitDelay has passed.
func RunScripts(ctx context.Context, sp *spawn.Spawner, scripts []proto.Script, sink LogSink) error {
	if sink == nil {
		sink = NopSink{}
	}
	for i, s := range scripts {
		source, start := "script:"+s.Name, time.Now()
		reportRun(sink, proto.Run{Source: source, State: proto.RunRunning, StartedAt: start.UTC()})
		err := runScript(ctx, sp, i, s, sink)
		var se *ScriptError
		state := proto.RunSucceeded
		switch {
		case errors.As(err, &se) && se.Timeout > 0:
			state = proto.RunTimedOut
		case se != nil:
			state = proto.RunFailed
		case err != nil: // ctx ended: the agent is stopping
			state = proto.RunStopped
		}
		reportRun(sink, ended(source, state, start, time.Now(), err))
		if err != nil {
			return err
		}
	}
	return nil
}

func runScript(ctx context.Context, sp *spawn.Spawner, index int, s proto.Script, sink LogSink) error {
	sctx, cancel := ctx, context.CancelFunc(func() {})
	var timeout time.Duration
	if s.TimeoutSeconds > 0 {
		timeout = time.Duration(s.TimeoutSeconds) * time.Second
		sctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()

	source := "script:" + s.Name
	stdout := newLineWriter(sink, source, StreamStdout)
	stderr := newLineWriter(sink, source, StreamStderr)
	cmd, err := sp.Start(sctx, spawn.Spec{Command: s.Script}, func(c *exec.Cmd) error {
		c.Stdout, c.Stderr = stdout, stderr
		return c.Start()
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("startup script %q: %w", s.Name, ctx.Err())
		}
		if sctx.Err() != nil {
			return &ScriptError{Name: s.Name, Index: index, ExitCode: -1, Timeout: timeout, Err: sctx.Err()}
		}
		return &ScriptError{Name: s.Name, Index: index, ExitCode: -1, Err: err}
	}
	err = cmd.Wait()
	_ = stdout.Close()
	_ = stderr.Close()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("startup script %q: %w", s.Name, ctx.Err())
	case sctx.Err() != nil:
		return &ScriptError{Name: s.Name, Index: index, ExitCode: -1, Timeout: timeout, Err: sctx.Err()}
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		return nil
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return &ScriptError{Name: s.Name, Index: index, ExitCode: code, Err: err}
}
