package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/scripts"
)

// lifecycle runs once per agent process: it waits for the first apply (R6:
// files on disk before any script), runs the startup scripts in order,
// reports ready or start_error, then supervises the apps until ctx ends.
func (a *Agent) lifecycle(ctx context.Context) {
	waitLog := time.NewTimer(a.cfg.WaitingLogAfter)
	defer waitLog.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.firstApply:
			break wait
		case <-waitLog.C:
			a.log.Info("waiting for secrets from the control plane before running startup scripts")
		}
	}
	m := a.manifest
	a.report(proto.StateStarting, "")
	if err := scripts.RunScripts(ctx, a.spawner, m.Scripts, a.fwd); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Error("a startup script failed; apps are still started", zap.Error(err))
		a.report(proto.StateStartError, err.Error())
	} else {
		a.report(proto.StateReady, "")
	}
	if a.cfg.AfterBoot != nil {
		a.cfg.AfterBoot()
	}
	if len(m.Apps) == 0 {
		<-ctx.Done()
		return
	}
	sup, err := scripts.NewSupervisor(scripts.SupervisorConfig{Spawner: a.spawner, Apps: m.Apps, Sink: a.fwd,
		Logger: a.log.Named("apps")})
	if err != nil {
		a.log.Error("cannot supervise apps", zap.Error(err))
		<-ctx.Done()
		return
	}
	_ = sup.Run(ctx)
}
