package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// The markers around the block config-ssh owns in ~/.ssh/config.
const (
	sshBlockStart = "# ------------START-COURIER------------"
	sshBlockEnd   = "# ------------END-COURIER--------------"
	sshHostPrefix = "courier."
)

var errSSHConfigMarkers = errors.New("ssh config has unbalanced Courier markers")

func newConfigSSHCommand() *cobra.Command {
	var (
		path   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "config-ssh",
		Short: "Add a 'Host courier.*' block to your SSH config",
		Long: `Write (or update) a marked block in ~/.ssh/config so that OpenSSH, and
tools built on it (scp, rsync, VS Code Remote-SSH), reach any workspace as
courier.WORKSPACE through 'courier ssh --stdio'. Everything outside the markers
is left as it was; running it again changes nothing unless the courier binary
moved.`,
		Example: `  courier config-ssh
  ssh courier.dev
  courier config-ssh --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("find home directory (pass --ssh-config-file): %w", err)
				}
				path = filepath.Join(home, ".ssh", "config")
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the courier binary: %w", err)
			}
			block := sshConfigBlock(exe, os.Getenv(envConfigDir))
			if dryRun {
				fmt.Fprint(cmd.OutOrStdout(), block)
				return nil
			}
			old, mode, err := readSSHConfig(path)
			if err != nil {
				return err
			}
			updated, err := upsertSSHBlock(old, block)
			if err != nil {
				return fmt.Errorf("%s: %w; fix or remove the markers and run again", path, err)
			}
			if updated == old {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is up to date.\n", path)
				return nil
			}
			if err := writeFileAtomic(path, []byte(updated), mode); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Updated %s. Connect with: ssh %sWORKSPACE\n", path, sshHostPrefix)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "ssh-config-file", "", "SSH config file to edit (default ~/.ssh/config)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the block instead of writing it")
	return cmd
}

// sshQuote quotes an argument for ssh_config's ProxyCommand, which is run by
// the user's shell: single quotes, with embedded ones escaped.
func sshQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshConfigBlock renders the managed block. Host keys are not checked by
// OpenSSH because the tunnel is authenticated by the control plane and the
// agent's host key changes with every agent start.
func sshConfigBlock(exe, configDir string) string {
	command := sshQuote(exe) + " ssh --stdio --ssh-host-prefix " + sshHostPrefix + " %h"
	if configDir != "" {
		command = "env " + envConfigDir + "=" + sshQuote(configDir) + " " + command
	}
	var b strings.Builder
	b.WriteString(sshBlockStart + "\n")
	b.WriteString("# Managed by 'courier config-ssh'; edits inside these markers are overwritten.\n")
	b.WriteString("Host " + sshHostPrefix + "*\n")
	b.WriteString("  ProxyCommand " + command + "\n")
	b.WriteString("  ConnectTimeout 0\n")
	b.WriteString("  StrictHostKeyChecking no\n")
	b.WriteString("  UserKnownHostsFile /dev/null\n")
	b.WriteString("  LogLevel ERROR\n")
	b.WriteString(sshBlockEnd + "\n")
	return b.String()
}

// readSSHConfig returns the file's content and mode; a missing file is empty
// with mode 0600.
func readSSHConfig(path string) (string, fs.FileMode, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0o600, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read ssh config: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, fmt.Errorf("read ssh config: %w", err)
	}
	return string(data), fi.Mode().Perm(), nil
}

// upsertSSHBlock replaces the marked block in content with block, or appends
// block after a blank line when there is none.
func upsertSSHBlock(content, block string) (string, error) {
	start := strings.Index(content, sshBlockStart)
	end := strings.Index(content, sshBlockEnd)
	switch {
	case start < 0 && end < 0:
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		if content != "" {
			content += "\n"
		}
		return content + block, nil
	case start < 0 || end < 0 || end < start ||
		strings.Count(content, sshBlockStart) > 1 || strings.Count(content, sshBlockEnd) > 1:
		return "", errSSHConfigMarkers
	}
	after := content[end+len(sshBlockEnd):]
	after = strings.TrimPrefix(after, "\n")
	return content[:start] + block + after, nil
}

// writeFileAtomic writes data to path through a temp file and rename, with
// mode, creating the parent directory 0700.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".courier-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
