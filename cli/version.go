package cli

import (
	"fmt"
	"runtime"

	"github.com/courierhq/courier/agent/proto"
	"github.com/spf13/cobra"
)

// version is the release, set at build time with
// -ldflags "-X github.com/courierhq/courier/cli.version=v1.2.3".
var version = "dev"

// versionInfo is what `courier version -o json` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Protocol string `json:"protocol"`
}

func newVersionCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, Go version and agent protocol version",
		Example: "  courier version\n  courier version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			v := versionInfo{Version: version, Go: runtime.Version(), Protocol: proto.Version}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "courier %s (%s, agent protocol %s)\n", v.Version, v.Go, v.Protocol)
			return nil
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}
