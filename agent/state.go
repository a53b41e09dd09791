package agent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/filewriter"
	"github.com/courierhq/courier/inject"
)

// state is what the agent remembers between applies, in DataDir/state.json.
// It holds paths and secret names, never values.
type state struct {
	// Files maps every path the agent has written to the secret it wrote
	// there last.
	Files map[string]string `json:"files"`
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.DataDir, "state.json") }

func (a *Agent) loadState() state {
	st := state{Files: map[string]string{}}
	b, err := afero.ReadFile(a.cfg.Fs, a.statePath())
	if err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.Files == nil {
		st.Files = map[string]string{}
	}
	return st
}

// trackFiles records the paths this apply wrote, and logs and returns the
// files earlier applies left behind: R7 keeps them on disk after a path
// change, a cleared target or a deletion, and an operator may want to
// remove them. A disabled secret's path counts as current: its file is
// still its own and is rewritten when it is enabled again.
func (a *Agent) trackFiles(rep inject.Report) []string {
	st := a.loadState()
	current := map[string]bool{}
	for _, o := range rep.Outcomes {
		if o.Path == "" {
			continue
		}
		current[o.Path] = true
		if o.Outcome == proto.OutcomeWritten || o.Outcome == proto.OutcomeUnchanged {
			st.Files[o.Path] = o.Name
		}
	}
	var orphans []string
	for p := range st.Files {
		if !current[p] {
			orphans = append(orphans, p)
		}
	}
	sort.Strings(orphans)
	for _, p := range orphans {
		a.log.Info("file left on disk by an earlier apply; Courier never deletes files, remove it if it is no longer needed",
			zap.String("path", p), zap.String("written_for", st.Files[p]))
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	// The filewriter writes state.json like a secret: atomically, 0600.
	res := a.ownWriter.WriteAll(context.Background(), []filewriter.File{
		{Secret: "courier-agent-state", Path: a.statePath(), Content: b, UpdatedAt: time.Now()}})
	if res[0].Err != nil {
		a.log.Warn("could not save the agent state file", zap.Error(res[0].Err))
	}
	return orphans
}
