package main

import (
	"fmt"
	"os"

	"github.com/courierhq/courier/agent/initproc"
	"github.com/courierhq/courier/agent/tokenenv"
)

// envNoInit, when set to a true value, keeps the agent from acting as init
// when it is PID 1 (for a runtime that already gives it one, e.g.
// `docker run --init`, though that makes it not PID 1 anyway).
const envNoInit = "COURIER_AGENT_NO_INIT"

// asInit runs the agent under package initproc when this process is PID 1:
// this process only reaps and forwards signals, and a child runs the
// agent. It reports false when this process is not PID 1 (the caller then
// runs the agent itself) and otherwise the exit code to leave with.
//
// The token: given by COURIER_AGENT_TOKEN, tokenenv.Take first re-executes
// this PID 1 in place without it (see that package), then the inherited
// pipe it left is handed down to the child as descriptor 3, where the
// child's own Take reads it. So neither process keeps the token in its
// environment.
func asInit(args []string) (code int, ok bool) {
	if !initproc.IsPID1() || os.Getenv(envNoInit) == "1" || os.Getenv(envNoInit) == "true" {
		return 0, false
	}
	if len(args) > 0 && (args[0] == sftpServerArg || args[0] == "--version" || args[0] == "-version" ||
		args[0] == "--help" || args[0] == "-help" || args[0] == "-h") {
		return 0, false
	}
	env := os.Environ()
	var extra []*os.File
	if _, fromEnv := os.LookupEnv(tokenenv.EnvTokenFD); !fromEnv && os.Getenv(tokenenv.EnvToken) != "" {
		// Re-executes in place and does not return, unless exec failed:
		// then the child gets the token the way this process did.
		if token, err := tokenenv.Take(); token != "" {
			fmt.Fprintln(os.Stderr, "courier-agent: as PID 1:", err)
			env = append(os.Environ(), tokenenv.EnvToken+"="+token)
		}
	} else if fd, fromPipe := os.LookupEnv(tokenenv.EnvTokenFD); fromPipe {
		var n int
		if _, err := fmt.Sscanf(fd, "%d", &n); err == nil && n >= 3 {
			extra = append(extra, os.NewFile(uintptr(n), "agent-token-pipe"))
			env = withEnv(env, tokenenv.EnvTokenFD, "3")
		}
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	code, err = initproc.Run(initproc.Config{Path: exe, Args: os.Args, Env: env, ExtraFiles: extra})
	if err != nil {
		fmt.Fprintln(os.Stderr, "courier-agent:", err)
		return 1, true
	}
	return code, true
}

// withEnv returns env with name set to value, replacing any earlier value.
func withEnv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, name+"="+value)
}
