package agent

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/filewriter"
)

// envFileSecret names the env file in the writer's results and logs.
const envFileSecret = "(env file)"

// writeEnvFile writes Config.EnvFile, when set: the template env with the
// secret env over it (R5), as a shell script of exports. A failure is
// logged (the path and why, never a value); the apply goes on.
func (a *Agent) writeEnvFile(ctx context.Context, templateEnv, secretEnv map[string]string) {
	if a.cfg.EnvFile == "" {
		return
	}
	env := maps.Clone(templateEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, secretEnv)
	res := a.ownWriter.WriteAll(ctx, []filewriter.File{{Secret: envFileSecret, Path: a.cfg.EnvFile,
		Content: envFileContent(env), UpdatedAt: time.Now()}})
	if r := res[0]; r.Err != nil {
		a.log.Warn("could not write the env file", zap.String("path", r.Path), zap.Error(r.Err))
	}
}

// envFileContent renders env as `export NAME='value'` lines, sorted by
// name. Single quotes keep every byte but the quote itself, which is
// written as quote, backslash, quote, quote (close, escaped quote, reopen);
// names are valid env names (the control plane refuses others), so they
// need no quoting.
func envFileContent(env map[string]string) []byte {
	var b strings.Builder
	b.WriteString("# Written by courier-agent at every apply: the env it gives new processes. Do not edit.\n")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString("export " + k + "='" + strings.ReplaceAll(env[k], "'", `'\''`) + "'\n")
	}
	return []byte(b.String())
}
