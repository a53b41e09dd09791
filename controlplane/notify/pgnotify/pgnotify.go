// Package pgnotify is the notify.Notifier of several control-plane
// replicas sharing one PostgreSQL database: Publish sends the user ID with
// pg_notify on a channel, and one dedicated connection per process LISTENs
// on it and hands what it hears to this process's subscriptions.
//
// A notification sent while the listening connection is down is lost, so
// every time the connection is (re-)established — the first time included —
// every subscription gets a Batch with Resync set. Subscribers read the
// current state at a resync (agents compare a revision), so a spurious one
// costs a read, never a wrong answer.
package pgnotify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/notify"
)

// DefaultChannel is the channel Config.Channel defaults to.
const DefaultChannel = "courier_secrets_changed"

// publishSendTimeout bounds one statement sending a batch of publishes.
const publishSendTimeout = 10 * time.Second

// pingTimeout bounds one ping of a silent listening connection.
const pingTimeout = 10 * time.Second

var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("pgnotify: invalid config")
	// ErrRunning is returned by Run when it is already running.
	ErrRunning = errors.New("pgnotify: Run called twice")
)

// Config configures a Notifier.
type Config struct {
	// URL is the PostgreSQL connection string (a postgres:// URL or
	// key=value pairs). It may hold a password and is never logged.
	// Required.
	URL string
	// Channel is the LISTEN/NOTIFY channel: every replica of one
	// deployment must use the same one. Default DefaultChannel.
	Channel string
	// ApplicationName is the listening connection's application_name, as
	// pg_stat_activity shows it. Default "courier-listen".
	ApplicationName string
	// PingInterval is how long the listening connection may stay silent
	// before it is pinged; a failed ping counts as a lost connection (a
	// network that drops packets without a reset would otherwise go
	// unnoticed). Default 30s.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the jittered wait between attempts
	// to re-establish the listening connection. Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Logger logs connection losses (never a URL or a password). Default
	// nil: no logs.
	Logger *zap.Logger
}

// DefaultConfig returns a Config with every default filled in; URL must
// still be set.
func DefaultConfig() Config {
	return Config{
		Channel:         DefaultChannel,
		ApplicationName: "courier-listen",
		PingInterval:    30 * time.Second,
		MinBackoff:      100 * time.Millisecond,
		MaxBackoff:      5 * time.Second,
	}
}

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("%w: the PostgreSQL URL is required", ErrInvalidConfig)
	case c.Channel == "" || len(c.Channel) > 63:
		return fmt.Errorf("%w: the channel name must have 1 to 63 bytes", ErrInvalidConfig)
	case c.PingInterval <= 0:
		return fmt.Errorf("%w: the ping interval must be positive", ErrInvalidConfig)
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("%w: backoff bounds must be positive and ordered", ErrInvalidConfig)
	}
	return nil
}

// Notifier is the PostgreSQL notify.Notifier. New starts nothing; Run
// keeps the listening connection up until its context ends or Close is
// called. Publish works without Run (it only sends), but a process hears
// notifications only while Run runs. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	listen *pgx.ConnConfig
	pool   *pgxpool.Pool
	local  *notify.Local
	log    *zap.Logger

	stop     chan struct{} // closed by Close
	stopOnce sync.Once

	// mu guards the fields that follow.
	mu      sync.Mutex
	running bool
	done    chan struct{} // closed when Run returns; nil before Run

	// sendSem holds a token while a batch of publishes is being sent.
	sendSem chan struct{}
	// pubMu guards pending.
	pubMu sync.Mutex
	// pending is the batch that Publish calls join until its leader sends
	// it; nil when no publish waits.
	pending *pubBatch
}

// pubBatch is the user IDs of the Publish calls that one statement sends.
type pubBatch struct {
	users []string
	err   error         // set before done is closed
	done  chan struct{} // closed once sent (or failed)
}

var _ notify.Notifier = (*Notifier)(nil)

// New checks cfg and prepares a Notifier. It opens no connection.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Parse errors are replaced: pgx redacts the password, but say
	// nothing of the input to be sure.
	const badURL = "pgnotify: the PostgreSQL URL is not valid"
	// The listening connection's settings come from the pool's parse of
	// the URL: pgx.ParseConfig alone would send the pool's own parameters
	// (pool_max_conns, which the README documents) to PostgreSQL as
	// settings, and every LISTEN connection would be refused with
	// "unrecognized configuration parameter".
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, errors.New(badURL)
	}
	listen := pcfg.ConnConfig.Copy()
	if cfg.ApplicationName != "" {
		listen.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	pcfg.MaxConns = 2
	// A notification is a hint, not a record: the change it announces
	// committed (durably) before Publish is called, and a listener that
	// misses one resyncs. So its own transaction (pg_notify takes a
	// transaction ID) need not wait for the WAL flush; with fsync on, that
	// wait was one more disk flush per secret write, on a pool of two.
	// (Sending it inside the change's own transaction would save the
	// round trip but not the cost: PostgreSQL serializes every notifying
	// transaction from its PreCommit_Notify, under a database-wide lock,
	// until its commit ends, flush included, so the writes would stop
	// sharing flushes.)
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Notifier{cfg: cfg, listen: listen, pool: pool, local: notify.NewLocal(0), log: log,
		stop: make(chan struct{}), sendSem: make(chan struct{}, 1)}, nil
}

// Publish implements notify.Notifier: it sends userID on the channel and
// returns once it is sent. Call it after the change committed (a
// notification is delivered when its own transaction commits).
//
// Concurrent publishes share statements, one at a time: the first Publish
// to find no batch forming leads a new one, which every Publish arriving
// until it is sent joins; the leader waits for the batch before it to be
// sent, then sends its own as one statement and one transaction (one
// notification per user ID on the wire, as before, so every replica
// version reads them alike). Under load that is one round trip for many
// changes instead of one each; alone, it costs nothing more.
func (n *Notifier) Publish(ctx context.Context, userID string) error {
	if n.closed() {
		return notify.ErrClosed
	}
	n.pubMu.Lock()
	b, lead := n.pending, false
	if b == nil {
		b, lead = &pubBatch{done: make(chan struct{})}, true
		n.pending = b
	}
	b.users = append(b.users, userID)
	n.pubMu.Unlock()
	if lead {
		n.send(ctx, b)
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send waits for the batch before b to be sent, closes b to joiners and
// sends it. The statement runs under ctx without its cancellation (other
// callers' changes ride on it), bounded by publishSendTimeout, so the wait
// for the batch before is bounded too.
func (n *Notifier) send(ctx context.Context, b *pubBatch) {
	defer close(b.done)
	n.sendSem <- struct{}{}
	defer func() { <-n.sendSem }()
	n.pubMu.Lock()
	if n.pending == b {
		n.pending = nil
	}
	users := b.users
	n.pubMu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishSendTimeout)
	defer cancel()
	if _, err := n.pool.Exec(sctx, `SELECT pg_notify($1, u) FROM unnest($2::text[]) AS u`, n.cfg.Channel, users); err != nil {
		b.err = fmt.Errorf("pgnotify: publish: %w", err)
	}
}

// Subscribe implements notify.Notifier.
func (n *Notifier) Subscribe() notify.Subscription { return n.local.Subscribe() }

// Close implements notify.Notifier: it stops Run, waits for it, ends every
// subscription and closes the publishing connections. It is safe to call
// twice.
func (n *Notifier) Close() error {
	n.stopOnce.Do(func() {
		close(n.stop)
		n.mu.Lock()
		done := n.done
		n.mu.Unlock()
		if done != nil {
			<-done
		}
		_ = n.local.Close()
		n.pool.Close()
	})
	return nil
}

func (n *Notifier) closed() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// Run keeps a connection LISTENing on the channel and passes what it hears
// to the subscriptions; after each (re-)connection it resyncs them. A lost
// connection is re-established with capped, jittered backoff, reset by a
// success. It returns nil when ctx ends or Close is called, ErrRunning when
// called twice and notify.ErrClosed when called after Close.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.closed() {
		n.mu.Unlock()
		return notify.ErrClosed
	}
	if n.running {
		n.mu.Unlock()
		return ErrRunning
	}
	n.running = true
	n.done = make(chan struct{})
	n.mu.Unlock()
	defer close(n.done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = n.cfg.MinBackoff, n.cfg.MaxBackoff, 0
	b.Reset()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		err := n.listenOnce(ctx, b.Reset)
		if ctx.Err() != nil {
			return nil
		}
		wait := b.NextBackOff()
		n.log.Warn("the change notification connection to PostgreSQL failed; reconnecting",
			zap.Error(err), zap.Duration("retry_in", wait))
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

// listenOnce connects, LISTENs, resyncs the subscriptions (and calls
// connected), then relays notifications until the connection fails (or a
// ping after PingInterval of silence does) or ctx ends.
func (n *Notifier) listenOnce(ctx context.Context, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, n.listen)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.cfg.Channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	// Whatever was sent while no connection listened is lost: every
	// subscriber re-reads.
	n.local.Resync()
	n.log.Info("listening for secret changes", zap.String("channel", n.cfg.Channel))
	for {
		wctx, cancel := context.WithTimeout(ctx, n.cfg.PingInterval)
		msg, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			_ = n.local.Publish(ctx, msg.Payload)
			continue
		case ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		// Silence: a timed-out wait leaves the connection usable; make
		// sure the server is still there.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}
