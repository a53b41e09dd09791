// The runtime's periodic check of the CPU limit (once a second, for
// GOMAXPROCS to follow a container's limit as it changes) is the one timer
// that wakes an idle agent that often; GOMAXPROCS is still set from the
// limit at start. See BENCHMARKS.md, "An idle agent".
//
//go:debug updatemaxprocs=0

// Command courier-agent is the workspace agent daemon. It only wires: flags
// and environment become an agent.Config, signals become cancellation, and
// logs are flushed last. See package agent for what it does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/sshd"
	"github.com/courierhq/courier/agent/tokenenv"
	"github.com/courierhq/courier/internal/memrelease"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// As a container's PID 1, this process only reaps and forwards signals
	// to a child that runs the agent (pid1.go).
	if code, ok := asInit(os.Args[1:]); ok {
		os.Exit(code)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "courier-agent:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(args []string) error {
	// The sftp server the SSH server starts holds no token: it only serves.
	if len(args) > 0 && args[0] == sftpServerArg {
		return serveSFTP()
	}
	// First of all: take the token given by environment out of it. On Unix
	// this re-executes the agent once, in place, and only the new image
	// gets past this line (see package tokenenv).
	token, tokenErr := tokenenv.Take()
	closeInheritedOnExec() // after Take, which reads and closes its own
	d := agent.DefaultConfig()
	fs := flag.NewFlagSet("courier-agent", flag.ContinueOnError)
	url := fs.String("url", env("COURIER_AGENT_URL", ""), "control plane URL (COURIER_AGENT_URL)")
	tokenFile := fs.String("token-file", env("COURIER_AGENT_TOKEN_FILE", ""), "file holding the agent token, re-read at every reconnect so a rotated token is picked up without a restart (COURIER_AGENT_TOKEN_FILE); "+
		"or set COURIER_AGENT_TOKEN, which cannot be re-read")
	dataDir := fs.String("data-dir", env("COURIER_AGENT_DATA_DIR", d.DataDir), "state file and SSH host key directory (COURIER_AGENT_DATA_DIR)")
	home := fs.String("home", env("COURIER_AGENT_HOME", d.Home), "the workspace user's home: where ~/ file secrets go (COURIER_AGENT_HOME)")
	logLevel := fs.String("log-level", env("COURIER_AGENT_LOG_LEVEL", "info"), "debug, info, warn or error (COURIER_AGENT_LOG_LEVEL)")
	logFormat := fs.String("log-format", env("COURIER_AGENT_LOG_FORMAT", "json"), "json or console (COURIER_AGENT_LOG_FORMAT)")
	logFile := fs.String("log-file", env("COURIER_AGENT_LOG_FILE", ""), "append logs to this file instead of stderr, e.g. for a Windows service (COURIER_AGENT_LOG_FILE)")
	maxBackoff := fs.Duration("max-backoff", envDuration("COURIER_AGENT_MAX_BACKOFF", d.MaxBackoff), "longest wait between reconnects (COURIER_AGENT_MAX_BACKOFF)")
	keepalive := fs.Duration("keepalive", envDuration("COURIER_AGENT_KEEPALIVE", proto.DefaultKeepaliveInterval), "keepalive interval; a dead connection is noticed within about twice this (COURIER_AGENT_KEEPALIVE)")
	service := fs.Bool("service", false, "run under the Windows service manager; detected when it started the agent, but Wine needs it said")
	liveDefault, liveErr := envBool("COURIER_AGENT_LIVE_FILES")
	envFile := fs.String("env-file", env("COURIER_AGENT_ENV_FILE", ""), "rewrite this file (0600) at every apply with the env new processes get, as shell exports, for processes the agent does not start such as docker exec; off by default (COURIER_AGENT_ENV_FILE)")
	liveFiles := fs.Bool("live-files", liveDefault, "re-apply at once when the control plane says secrets changed: files rewritten, env for new processes only (COURIER_AGENT_LIVE_FILES)")
	metricsListen := fs.String("metrics-listen", env("COURIER_AGENT_METRICS_LISTEN", ""), "serve Prometheus /metrics on this address, e.g. 127.0.0.1:2112; empty: off (COURIER_AGENT_METRICS_LISTEN)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if liveErr != nil && !flagSet(fs, "live-files") {
		return liveErr
	}
	if *showVersion {
		fmt.Printf("courier-agent %s (agent protocol %s)\n", version, proto.Version)
		return nil
	}
	log, err := newLogger(*logLevel, *logFormat, *logFile)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	switch {
	case errors.Is(tokenErr, tokenenv.ErrNotDropped):
		log.Warn("the agent token from COURIER_AGENT_TOKEN could not be dropped from the process environment; "+
			"prefer COURIER_AGENT_TOKEN_FILE", zap.Error(tokenErr))
	case tokenErr != nil:
		return tokenErr
	}
	// Nothing the agent starts inherits the token: it is gone from this
	// process's environment, and envmerge drops COURIER_AGENT_* from every
	// child's env as well.
	_ = os.Unsetenv("COURIER_AGENT_TOKEN_FILE")
	cfg := agent.Config{URL: *url, Token: token, TokenFile: *tokenFile, DataDir: *dataDir, Home: *home,
		Logger: log, MaxBackoff: *maxBackoff, KeepaliveInterval: *keepalive, Version: version, LiveFiles: *liveFiles, EnvFile: *envFile,
		AfterBoot: memrelease.AfterBurst}
	if *logFile != "" {
		cfg.OwnFiles = append(cfg.OwnFiles, *logFile)
	}
	if exe, err := os.Executable(); err == nil {
		cfg.OwnFiles = append(cfg.OwnFiles, exe)
		cfg.SFTPCommand = []string{exe, sftpServerArg}
	} else {
		log.Warn("sftp and scp are unavailable: cannot find this executable", zap.Error(err))
	}
	if token != "" && *tokenFile != "" {
		cfg.TokenFile = "" // the explicit token wins; say so
		log.Warn("both COURIER_AGENT_TOKEN and a token file are set; using COURIER_AGENT_TOKEN")
	}
	if *metricsListen != "" {
		reg := prometheus.NewRegistry()
		cfg.Metrics = reg
		stopMetrics, err := serveMetrics(*metricsListen, reg)
		if err != nil {
			return err
		}
		defer stopMetrics()
		log.Info("serving metrics", zap.String("address", *metricsListen))
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	// As a Windows service, the service manager's stop cancels instead
	// (service_windows.go).
	if ok, err := runAsService(a.Run, *service); ok {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}

// envBool reads a boolean environment variable (strconv.ParseBool's
// spellings); unset or empty is false.
func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean: use true or false", name, v)
	}
	return b, nil
}

// flagSet reports whether the command line set the named flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// sftpServerArg makes courier-agent an SFTP server on stdin and stdout. The
// agent's SSH server runs its own executable this way for every sftp
// subsystem request, through its spawner, so the SFTP server has a
// session's env and runs as the workspace user.
const sftpServerArg = "sftp-server"

func serveSFTP() error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	return sshd.ServeSFTP(os.Stdin, os.Stdout, dir)
}

// serveMetrics serves reg on addr at /metrics until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); <-done }, nil
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func newLogger(level, format, file string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	cfg.Sampling = nil
	// Operators read these logs: a stack trace belongs to a panic, not to
	// every error line (zap's production default).
	stacks := zap.AddStacktrace(zapcore.DPanicLevel)
	if file == "" {
		return cfg.Build(stacks)
	}
	// Opened here, not as a zap output path: zap reads "C:\..." as a URL.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(cfg.EncoderConfig)
	if format == "console" {
		enc = zapcore.NewConsoleEncoder(cfg.EncoderConfig)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(f), cfg.Level), zap.ErrorOutput(zapcore.Lock(f)), stacks), nil
}
