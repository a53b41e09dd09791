package controlplane

import (
	"errors"
	"fmt"
	"time"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/inject"
)

var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("invalid control plane config")
	// ErrClosed is returned by Run after Close, and by Run called twice.
	ErrClosed = errors.New("control plane closed")
)

// Log formats accepted in Config.LogFormat.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// Config configures a Server. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// Listen is the TCP address to serve on. Default ":8080". Use
	// "127.0.0.1:0" in tests and read the bound address with Server.Addr.
	Listen string
	// DataDir holds the SQLite database (courier.db). Required unless
	// PostgresURL is set; created with mode 0700 if missing. Default ""
	// (must be set).
	DataDir string
	// PostgresURL, when set, stores everything in that PostgreSQL database
	// instead of SQLite in DataDir (which is then not used): a postgres://
	// URL or a key=value connection string; a search_path parameter picks
	// the schema. Several servers may share one database. It may hold a
	// password, so it is never logged. Default "" (SQLite).
	PostgresURL string
	// AdvertiseURL is this replica's base URL as the other replicas reach
	// it (http://10.0.0.5:8080), registered in the database so that an SSH
	// session arriving at another replica is relayed here when this one
	// holds the agent. Default "": nothing is relayed to this replica.
	AdvertiseURL string
	// ReplicaSecretFile holds the secret replicas share to authenticate
	// relayed SSH streams (HMAC-SHA256; at least 32 bytes, surrounding
	// whitespace ignored). Default "": this replica neither relays nor
	// accepts relayed streams.
	ReplicaSecretFile string
	// HeartbeatInterval is how often the replica refreshes its
	// registration. Default 5s.
	HeartbeatInterval time.Duration
	// ReplicaTTL is how old a replica's heartbeat may be before the others
	// treat it as gone (its agents marked disconnected, nothing relayed to
	// it). Default 30s; more than HeartbeatInterval.
	ReplicaTTL time.Duration
	// RebalanceInterval is how often the replica compares the agents it
	// holds with its share (connected agents over live replicas) and,
	// holding clearly more, asks a few to reconnect so the load balancer
	// sends them elsewhere (controlplane/rebalance). Default 10s; negative
	// turns it off.
	RebalanceInterval time.Duration
	// TLSCert and TLSKey are PEM files; both set serves HTTPS, both empty
	// serves plain HTTP (behind a TLS-terminating proxy). Default "".
	TLSCert string
	TLSKey  string
	// EncryptionKeyFile holds the keys that seal secret values at rest.
	// Default "": values are stored unencrypted and one warning is logged at
	// start-up.
	EncryptionKeyFile string
	// DisableSecretFilePath refuses file targets on create, update and batch
	// import, and tells agents to write no files. Default false.
	DisableSecretFilePath bool
	// LogLevel is "debug", "info", "warn" or "error". Default "info". The
	// server does not build its own logger; the CLI reads this field.
	LogLevel string
	// LogFormat is LogFormatJSON or LogFormatConsole. Default json.
	LogFormat string
	// Limits are the per-user caps of R9. Default inject.DefaultLimits().
	Limits inject.Limits
	// SessionLifetime is how long a login session stays valid. Default 7
	// days.
	SessionLifetime time.Duration
	// SessionSweepInterval is how often expired login sessions are
	// deleted, each with a session.expired audit record. Default 1 minute.
	SessionSweepInterval time.Duration
	// MaxTokenLifetime is the longest lifetime a personal API token may be
	// created with. Default 90 days.
	MaxTokenLifetime time.Duration
	// AgentTokenLifetime is how long a workspace's agent token is accepted
	// after the workspace is created or its token rotated (a rotation may
	// ask for another lifetime). Default 0: agent tokens never expire.
	AgentTokenLifetime time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests when Run's
	// context ends. Default 10s.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// MaxBodyBytes bounds a request body; larger bodies get 413. Default
	// 1 MiB.
	MaxBodyBytes int64
	// BcryptCost is the bcrypt work factor of password hashes. Default
	// bcrypt.DefaultCost (10); tests lower it to bcrypt.MinCost.
	BcryptCost int
	// LoginThrottle limits password guessing per account and per client
	// address. Default identity.DefaultLoginThrottle().
	LoginThrottle identity.LoginThrottle
	// OIDC configures single sign-on (issue 19). Default: off.
	OIDC OIDCConfig
	// SignInStarts limits how often a client address may start a single
	// sign-on or device sign-in (each start stores a flow, unauthenticated);
	// refused starts get 429 with Retry-After. Zero fields take
	// identity.StartLimitConfig's defaults (20 at once, then 10 a minute
	// per address; 600 a minute in all, per replica).
	SignInStarts identity.StartLimitConfig
	// DisablePasswordLogin refuses password logins (REST and dashboard)
	// and the first-user route; people sign in with OIDC. Default false.
	DisablePasswordLogin bool
	// AuditLogFile, when set, is where every audit record is appended as
	// one JSON line ("-": standard output); reopened on SIGHUP. Default
	// "": none.
	AuditLogFile string
	// AuditRetention prunes audit records older than this (in batches,
	// keeping the chain verifiable from the first kept one). Default 0:
	// kept forever.
	AuditRetention time.Duration
	// AuditHeadEvery is how often the audit chain's head is published to
	// the log and the audit log file. Default 10 minutes.
	AuditHeadEvery time.Duration
	// Now is the clock. Default nil: time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in except
// DataDir (or PostgresURL), which the caller must set.
func DefaultConfig() Config {
	return Config{
		Listen:               ":8080",
		LogLevel:             "info",
		LogFormat:            LogFormatJSON,
		Limits:               inject.DefaultLimits(),
		SessionLifetime:      7 * 24 * time.Hour,
		SessionSweepInterval: time.Minute,
		MaxTokenLifetime:     90 * 24 * time.Hour,
		ShutdownTimeout:      10 * time.Second,
		ReadHeaderTimeout:    10 * time.Second,
		MaxBodyBytes:         1 << 20,
		BcryptCost:           10,
		LoginThrottle:        identity.DefaultLoginThrottle(),
		HeartbeatInterval:    5 * time.Second,
		ReplicaTTL:           30 * time.Second,
		RebalanceInterval:    10 * time.Second,
	}
}

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Listen == "":
		return bad("listen address is required")
	case c.DataDir == "" && c.PostgresURL == "":
		return bad("data dir is required (or a PostgreSQL URL)")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return bad("TLS needs both a certificate and a key file (or neither)")
	case c.LogFormat != LogFormatJSON && c.LogFormat != LogFormatConsole:
		return bad("log format %q is not %q or %q", c.LogFormat, LogFormatJSON, LogFormatConsole)
	case c.Limits.MaxSecrets <= 0 || c.Limits.MaxTotalBytes <= 0 ||
		c.Limits.MaxEnvBytes <= 0 || c.Limits.MaxSecretBytes <= 0:
		return bad("every limit must be positive")
	case c.SessionLifetime <= 0:
		return bad("session lifetime must be positive")
	case c.SessionSweepInterval <= 0:
		return bad("the session sweep interval must be positive")
	case c.MaxTokenLifetime <= 0:
		return bad("the maximum API token lifetime must be positive")
	case c.AgentTokenLifetime < 0:
		return bad("agent token lifetime must not be negative (0: never expires)")
	case c.ShutdownTimeout <= 0 || c.ReadHeaderTimeout <= 0:
		return bad("timeouts must be positive")
	case c.MaxBodyBytes <= 0:
		return bad("max body bytes must be positive")
	case c.BcryptCost < 4 || c.BcryptCost > 31:
		return bad("bcrypt cost %d is outside 4..31", c.BcryptCost)
	case c.AuditRetention < 0 || c.AuditHeadEvery < 0:
		return bad("audit retention and head interval must not be negative")
	case c.AuditRetention > 0 && c.AuditRetention < 24*time.Hour:
		return bad("audit retention must be at least a day (or 0: keep every record)")
	case c.HeartbeatInterval <= 0 || c.ReplicaTTL <= c.HeartbeatInterval:
		return bad("the replica heartbeat interval must be positive and shorter than the replica TTL")
	}
	if err := validAdvertiseURL(c.AdvertiseURL); err != nil {
		return bad("%s", err.Error())
	}
	if err := c.OIDC.validate(c.DisablePasswordLogin); err != nil {
		return bad("%s", err.Error())
	}
	if err := c.LoginThrottle.Validate(); err != nil {
		return bad("%s", err.Error())
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log level %q is not debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// stamp is the time recorded on a new or changed record: UTC, truncated to
// the microsecond so that what a create returns equals what a later read
// from the store returns.
func (c Config) stamp() time.Time { return c.now().UTC().Truncate(time.Microsecond) }
