package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCommand is `courier server healthcheck`: one GET of the
// server's readiness endpoint, exit 0 on 200 and 1 otherwise. It exists for
// images without a shell or curl (deploy/images/server is FROM scratch),
// whose HEALTHCHECK runs the binary itself.
func newHealthcheckCommand() *cobra.Command {
	url := "http://127.0.0.1:8080/readyz"
	if v := os.Getenv("COURIER_HEALTHCHECK_URL"); v != "" {
		url = v
	}
	timeout := 3 * time.Second
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the server at --url answers 200 (for container health checks)",
		Example: `  courier server healthcheck
  courier server healthcheck --url http://127.0.0.1:8080/healthz
  # in a Dockerfile FROM scratch:
  HEALTHCHECK CMD ["/courier", "server", "healthcheck"]`,
		Long: `Ask a running server's readiness endpoint once: exit 0 when it answers
200, 1 otherwise. /readyz answers 200 only when the server reaches its store;
/healthz (liveness) whenever the process serves HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", url, "endpoint to ask (COURIER_HEALTHCHECK_URL)")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "give up after this long")
	return cmd
}
