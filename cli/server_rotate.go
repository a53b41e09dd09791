package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/controlplane"
	"github.com/courierhq/courier/controlplane/rotate"
	"github.com/courierhq/courier/controlplane/seal"
)

var rotateEnv = []envBinding{
	{"data-dir", "COURIER_DATA_DIR"},
	{"postgres-url", "COURIER_POSTGRES_URL"},
	{"encryption-key-file", "COURIER_ENCRYPTION_KEY_FILE"},
}

// newRotateCommand builds `courier server reseal` (reseal true) or
// `courier server unseal`.
func newRotateCommand(reseal bool) *cobra.Command {
	var dataDir, pgURL, keyFile string
	batch := rotate.DefaultConfig().BatchSize
	cmd := &cobra.Command{
		Use:   "reseal",
		Short: "Seal every stored secret value under the first key of the key file",
		Long: `Seal every stored secret value under the first key of --encryption-key-file:
values sealed under an older key are opened (with any key of the file) and
sealed again, and values stored plain (before a key was configured) are
sealed. Put the new key first in the key file of every running server, then
run this; keep the old keys in the file until it reports no failure.

It works in batches while servers keep running: a value is replaced only if
it is still the one read, so a concurrent change wins (and is counted as
skipped); a secret's update time never changes. Running it again, after an
interruption or a crash, finishes the job. No value is ever printed.`,
		Example: `  courier server reseal --data-dir /var/lib/courier --encryption-key-file /etc/courier/keys`,
	}
	if !reseal {
		cmd.Use = "unseal"
		cmd.Short = "Store every secret value plain again (to migrate away from encryption at rest)"
		cmd.Long = `Open every sealed secret value with the keys of --encryption-key-file (all
of them that ever sealed a value still stored) and store it plain, for a
migration away from encryption at rest. Run it again after restarting the
servers without a key file, to catch values sealed in between.

Like reseal, it works in batches while servers run, never changes a
secret's update time, converges when run again and prints no value.`
		cmd.Example = `  courier server unseal --data-dir /var/lib/courier --encryption-key-file /etc/courier/keys`
	}
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags(), os.LookupEnv, rotateEnv); err != nil {
			return err
		}
		return runRotate(cmd, reseal, controlplane.Config{DataDir: dataDir, PostgresURL: pgURL}, keyFile, batch)
	}
	fs := cmd.Flags()
	fs.StringVar(&dataDir, "data-dir", defaultDataDir(), "directory of the SQLite database")
	fs.StringVar(&pgURL, "postgres-url", "", postgresURLUsage)
	fs.StringVar(&keyFile, "encryption-key-file", "", "key file: the first key seals, every key opens (required)")
	fs.IntVar(&batch, "batch-size", batch, "rows read and rewritten at a time")
	documentEnv(fs, rotateEnv)
	return cmd
}

func runRotate(cmd *cobra.Command, reseal bool, where controlplane.Config, keyFile string, batch int) (err error) {
	if keyFile == "" {
		return errors.New("--encryption-key-file is required")
	}
	kr, err := seal.LoadKeyFile(keyFile)
	if err != nil {
		return err
	}
	if where.PostgresURL == "" {
		path := filepath.Join(where.DataDir, controlplane.DBFile)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no Courier database at %s (check --data-dir or --postgres-url): %w", path, err)
		}
	}
	logger, err := newServerLogger("info", controlplane.LogFormatConsole)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	st, err := controlplane.OpenStore(cmd.Context(), where, logger.Named("store"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	cfg := rotate.DefaultConfig()
	cfg.Store, cfg.Keyring, cfg.BatchSize, cfg.Logger = st, kr, batch, logger.Named("rotate")
	run, verb := rotate.Reseal, "resealed"
	if !reseal {
		run, verb = rotate.Unseal, "unsealed"
	}
	rep, err := run(cmd.Context(), cfg)
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s %d, already current %d, skipped by a concurrent change %d, failed to open %d (of %d values)\n",
		verb, rep.Changed, rep.Current, rep.Skipped, rep.Failed, rep.Scanned)
	for _, f := range rep.FailedRows {
		fmt.Fprintf(cmd.ErrOrStderr(), "failed: %s\n", f)
	}
	switch {
	case err != nil:
		return fmt.Errorf("stopped early (run again to finish): %w", err)
	case rep.Failed > 0:
		return fmt.Errorf("%d values could not be opened and were left as they are; add their keys to the key file and run again", rep.Failed)
	case rep.Skipped > 0:
		fmt.Fprintln(out, "values changed during the run were skipped; run again to check them")
	}
	return nil
}
