//go:build windows

package main

import (
	"context"
	"fmt"

	"golang.org/x/sys/windows/svc"
)

// serviceName is what the service manager calls the agent; any name works
// (a process runs one service), this is the recipe's.
const serviceName = "CourierAgent"

// runAsService runs run under the Windows service manager when the process
// was started by it (or forced says so: x/sys detects a service by its
// parent being services.exe in session 0, which Wine's is not), and
// reports false otherwise. A stop or shutdown
// request cancels run's context, so the agent reports shutting_down and
// off as on SIGTERM; the service stops when run returns.
func runAsService(run func(context.Context) error, forced bool) (bool, error) {
	if !forced {
		if is, err := svc.IsWindowsService(); err != nil || !is {
			return false, nil
		}
	}
	h := &serviceHandler{run: run}
	if err := svc.Run(serviceName, h); err != nil {
		return true, fmt.Errorf("windows service: %w", err)
	}
	return true, h.err
}

type serviceHandler struct {
	run func(context.Context) error
	err error // run's result, read after svc.Run returns
}

// Execute is called by svc.Run on the service's own goroutine.
func (h *serviceHandler) Execute(_ []string, reqs <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case h.err = <-done:
			status <- svc.Status{State: svc.Stopped}
			if h.err != nil {
				return false, 1
			}
			return false, 0
		case r := <-reqs:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
			}
		}
	}
}
