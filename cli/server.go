package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/controlplane"
	"github.com/courierhq/courier/controlplane/identity"
)

// envBinding ties a flag to the environment variable that sets it when the
// flag is not given on the command line.
type envBinding struct {
	Flag string
	Env  string
}

// applyEnv sets every flag of bindings that was not given on the command line
// from its environment variable, if that is set (lookup is os.LookupEnv in
// production). Flags win over the environment. It also appends "[$ENV]" to
// each flag's usage so --help shows the variable. Call it from PreRunE or
// RunE, after flags are parsed.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool), bindings []envBinding) error {
	for _, b := range bindings {
		f := fs.Lookup(b.Flag)
		if f == nil {
			return fmt.Errorf("internal: no flag --%s to bind to $%s", b.Flag, b.Env)
		}
		if f.Changed {
			continue
		}
		v, ok := lookup(b.Env)
		if !ok {
			continue
		}
		if err := fs.Set(b.Flag, v); err != nil {
			return fmt.Errorf("$%s: %w", b.Env, err)
		}
	}
	return nil
}

// documentEnv appends the variable of each binding to its flag's usage.
func documentEnv(fs *pflag.FlagSet, bindings []envBinding) {
	for _, b := range bindings {
		if f := fs.Lookup(b.Flag); f != nil {
			f.Usage += " [$" + b.Env + "]"
		}
	}
}

var serverEnv = []envBinding{
	{"listen", "COURIER_LISTEN"},
	{"data-dir", "COURIER_DATA_DIR"},
	{"postgres-url", "COURIER_POSTGRES_URL"},
	{"tls-cert", "COURIER_TLS_CERT"},
	{"tls-key", "COURIER_TLS_KEY"},
	{"encryption-key-file", "COURIER_ENCRYPTION_KEY_FILE"},
	{"advertise-url", "COURIER_ADVERTISE_URL"},
	{"replica-secret-file", "COURIER_REPLICA_SECRET_FILE"},
	{"rebalance-interval", "COURIER_REBALANCE_INTERVAL"},
	{"disable-secret-file-path", "COURIER_DISABLE_SECRET_FILE_PATH"},
	{"trusted-proxies", "COURIER_TRUSTED_PROXIES"},
	{"max-token-lifetime", "COURIER_MAX_TOKEN_LIFETIME"},
	{"agent-token-lifetime", "COURIER_AGENT_TOKEN_LIFETIME"},
	{"log-level", "COURIER_LOG_LEVEL"},
	{"log-format", "COURIER_LOG_FORMAT"},
	{"oidc-issuer-url", "COURIER_OIDC_ISSUER_URL"},
	{"oidc-client-id", "COURIER_OIDC_CLIENT_ID"},
	{"oidc-client-secret-file", "COURIER_OIDC_CLIENT_SECRET_FILE"},
	{"oidc-redirect-url", "COURIER_OIDC_REDIRECT_URL"},
	{"oidc-allowed-email-domains", "COURIER_OIDC_ALLOWED_EMAIL_DOMAINS"},
	{"oidc-admin-group", "COURIER_OIDC_ADMIN_GROUP"},
	{"oidc-provider-name", "COURIER_OIDC_PROVIDER_NAME"},
	{"disable-password-login", "COURIER_DISABLE_PASSWORD_LOGIN"},
	{"audit-log-file", "COURIER_AUDIT_LOG_FILE"},
	{"audit-retention", "COURIER_AUDIT_RETENTION"},
}

func newServerCommand() *cobra.Command {
	cfg := controlplane.DefaultConfig()
	var trustedProxies, emailDomains string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Courier control plane (REST API, agent endpoint, metrics)",
		Example: `  courier server --listen :8080 --data-dir /var/lib/courier
  COURIER_POSTGRES_URL=postgres://courier@db.internal/courier courier server
  COURIER_ENCRYPTION_KEY_FILE=/etc/courier/keys courier server --log-format console`,
		Long: `Run the Courier control plane until SIGINT or SIGTERM.

Every flag can also be set by the environment variable shown in brackets;
a flag given on the command line wins. Without --encryption-key-file secret
values are stored unencrypted and the server says so once at start-up.

The store is SQLite in --data-dir unless --postgres-url names a PostgreSQL
database, which several servers (replicas) may share behind a load balancer
that passes websockets. Give each replica --advertise-url (its own address
as the other replicas reach it) and the same --replica-secret-file, so an
SSH session arriving at one replica is relayed to the one holding the agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv, serverEnv); err != nil {
				return err
			}
			proxies, err := identity.ParseTrustedProxies(trustedProxies)
			if err != nil {
				return err
			}
			cfg.LoginThrottle.TrustedProxies = proxies
			cfg.OIDC.AllowedEmailDomains = controlplane.ParseEmailDomains(emailDomains)
			return runServer(cmd, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to serve HTTP(S) on")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir(), "directory of the SQLite database")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", "", postgresURLUsage)
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate file; with --tls-key serves HTTPS")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file")
	fs.StringVar(&cfg.EncryptionKeyFile, "encryption-key-file", "", "key file that seals secret values at rest")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "",
		"this replica's base URL as the other replicas reach it (http://10.0.0.5:8080), for relaying SSH to agents it holds")
	fs.StringVar(&cfg.ReplicaSecretFile, "replica-secret-file", "",
		"file with the secret (32+ bytes) replicas share to authenticate relayed SSH; without it nothing is relayed")
	fs.DurationVar(&cfg.RebalanceInterval, "rebalance-interval", cfg.RebalanceInterval,
		"how often a replica holding clearly more than its share of agents asks a few to reconnect elsewhere; negative: never")
	fs.BoolVar(&cfg.DisableSecretFilePath, "disable-secret-file-path", false,
		"refuse file targets and deliver secrets as env vars only")
	fs.StringVar(&trustedProxies, "trusted-proxies", "",
		"comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed for login throttling")
	fs.Var(lifetimeFlag{&cfg.MaxTokenLifetime}, "max-token-lifetime",
		"the longest lifetime of a personal API token: days (90d) or a duration (720h)")
	fs.Var(agentLifetimeFlag{d: &cfg.AgentTokenLifetime, neverOK: true}, "agent-token-lifetime",
		"how long a new or rotated agent token is accepted: days (30d) or a duration (720h); 0 or never: no expiry")
	fs.StringVar(&cfg.AuditLogFile, "audit-log-file", "",
		"append every audit record to this file as a JSON line (- for stdout), for a SIEM; reopened on SIGHUP")
	fs.Var(agentLifetimeFlag{d: &cfg.AuditRetention, neverOK: true, min: 24 * time.Hour}, "audit-retention",
		"prune audit records older than this, at least a day: days (400d) or a duration; 0 or never (the default): keep them all")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or console")
	fs.StringVar(&cfg.OIDC.IssuerURL, "oidc-issuer-url", "",
		"single sign-on: the OpenID Connect provider's issuer URL (https); the provider is contacted at the first sign-in, not at start")
	fs.StringVar(&cfg.OIDC.ClientID, "oidc-client-id", "", "single sign-on: Courier's client id at the provider")
	fs.StringVar(&cfg.OIDC.ClientSecretFile, "oidc-client-secret-file", "", "single sign-on: file holding the client secret")
	fs.StringVar(&cfg.OIDC.RedirectURL, "oidc-redirect-url", "",
		"single sign-on: the callback URL registered at the provider (default: this server's URL as the browser reached it + /api/v2/users/oidc/callback)")
	fs.StringVar(&emailDomains, "oidc-allowed-email-domains", "", "single sign-on: comma-separated e-mail domains allowed to sign in (default: any)")
	fs.StringVar(&cfg.OIDC.AdminGroup, "oidc-admin-group", "",
		"single sign-on: a value of the groups claim that makes a user admin at each sign-in (and an admin outside it a member)")
	fs.StringVar(&cfg.OIDC.ProviderName, "oidc-provider-name", controlplane.DefaultOIDCProviderName, "single sign-on: the provider's name on the login page")
	fs.BoolVar(&cfg.DisablePasswordLogin, "disable-password-login", false, "refuse password logins; people sign in with single sign-on")
	documentEnv(fs, serverEnv)
	cmd.AddCommand(newRotateCommand(true), newRotateCommand(false), newHealthcheckCommand())
	return cmd
}

// postgresURLUsage is the usage of --postgres-url, shared by the commands
// that open the store.
const postgresURLUsage = "PostgreSQL database to use instead of SQLite in --data-dir " +
	"(postgres://user@host/db; keep the password out of the command line: use the environment variable, PGPASSWORD or ~/.pgpass)"

func defaultDataDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return d + "/courier-server"
	}
	return ".courier-server"
}

func runServer(cmd *cobra.Command, cfg controlplane.Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, err := newServerLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }() // flushed last
	srv, err := controlplane.New(cfg, logger)
	if err != nil {
		logger.Error("control plane failed to start", zap.Error(err))
		return err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	// SIGHUP reopens --audit-log-file, after logrotate moved it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-hup:
				srv.ReopenAuditLog()
			case <-stop:
				return
			}
		}
	}()
	return srv.Run(cmd.Context())
}

// newServerLogger builds the server's zap logger writing to stderr.
func newServerLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch strings.ToLower(format) {
	case controlplane.LogFormatJSON:
		enc = zapcore.NewJSONEncoder(encCfg)
	case controlplane.LogFormatConsole:
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q is not json or console", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core), nil
}
