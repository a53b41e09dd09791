package controlplane

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
)

// The audit log's background work for one Server: the batcher of access
// decisions, the exporter (JSON lines to --audit-log-file, and the chain's
// head published to the log), and retention (--audit-retention).

// auditPruneBatch is how many records one retention transaction deletes, so
// pruning a large backlog never holds the chain's tables long.
const auditPruneBatch = 1000

// auditPruneEvery is how often retention runs.
const auditPruneEvery = time.Hour

// auditRuntime holds the goroutines' handles.
type auditRuntime struct {
	aud      *auditor
	exporter *audit.Exporter
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// newAuditRuntime builds the batcher and exporter for st; it starts
// nothing.
func newAuditRuntime(cfg Config, st store.Store, replica string, log *zap.Logger) (*auditRuntime, error) {
	b, err := audit.NewBatcher(audit.BatcherConfig{Append: st.AppendAudit, Interval: auditFlushEvery, Log: log})
	if err != nil {
		return nil, err
	}
	ex, err := audit.NewExporter(audit.ExporterConfig{
		Path: cfg.AuditLogFile,
		Page: func(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
			return st.ListAudit(ctx, audit.Filter{After: after, Limit: limit, Oldest: true})
		},
		State:     st.AuditState,
		HeadEvery: cfg.AuditHeadEvery,
		Log:       log,
	})
	if err != nil {
		return nil, err
	}
	if err := ex.Check(); err != nil {
		return nil, fmt.Errorf("--audit-log-file: %w", err)
	}
	aud := &auditor{batch: b, replica: replica, log: log}
	if aud.refusals, err = audit.NewTally(audit.TallyConfig{Emit: aud.add, Window: refusalWindow}); err != nil {
		return nil, err
	}
	return &auditRuntime{aud: aud, exporter: ex}, nil
}

// start runs the batcher, the exporter and retention until stop.
func (rt *auditRuntime) start(cfg Config, st store.Store, log *zap.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	rt.wg.Add(3)
	go func() { defer rt.wg.Done(); _ = rt.aud.batch.Run(ctx) }()
	go func() { defer rt.wg.Done(); _ = rt.aud.refusals.Run(ctx) }()
	go func() {
		defer rt.wg.Done()
		if err := rt.exporter.Run(ctx); err != nil {
			log.Error("audit log export stopped", zap.String("path", cfg.AuditLogFile), zap.Error(err))
		}
	}()
	// Reading the chain's state chains the records a store staged (on
	// PostgreSQL, see pgstore's audit_pending), so every second each record
	// gets its place in the chain even when nobody reads the log.
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		t := time.NewTicker(auditFlushEvery)
		defer t.Stop()
		failing := false // an outage is logged once, and its end once
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, err := st.AuditState(ctx)
				switch {
				case err != nil && ctx.Err() == nil && !failing:
					failing = true
					log.Warn("could not chain audit records; trying again every second", zap.Error(err))
				case err == nil && failing:
					failing = false
					log.Info("audit records are chained again")
				}
			}
		}
	}()
	if cfg.AuditRetention > 0 {
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); prune(ctx, cfg, st, log) }()
	}
}

// stop flushes the batcher and stops everything; safe without start and
// twice.
func (rt *auditRuntime) stop() {
	if rt.cancel != nil {
		rt.cancel()
	}
	rt.wg.Wait()
	rt.aud.refusals.Flush() // into the batcher, before its last flush
	_ = rt.aud.batch.Close()
}

// prune deletes records older than the retention, in batches, now and
// every auditPruneEvery.
func prune(ctx context.Context, cfg Config, st store.Store, log *zap.Logger) {
	t := time.NewTicker(auditPruneEvery)
	defer t.Stop()
	for {
		total := 0
		for ctx.Err() == nil {
			n, err := st.PruneAudit(ctx, cfg.now().Add(-cfg.AuditRetention), auditPruneBatch)
			if err != nil {
				log.Warn("audit retention: prune failed", zap.Error(err))
				break
			}
			total += n
			if n < auditPruneBatch {
				break
			}
		}
		if total > 0 {
			log.Info("audit retention: pruned old records", zap.Int("records", total))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReopenAuditLog reopens --audit-log-file before the next write (the
// server calls it on SIGHUP, after logrotate moved the file).
func (s *Server) ReopenAuditLog() { s.auditRT.exporter.Reopen() }
