package inject

import "github.com/courierhq/courier/filewriter"

// What happened to one secret in one apply: SecretOutcome.Outcome is one of
// these. They are the strings the agent protocol carries (agent/proto's
// Outcome* constants hold the same values; the agent, which imports both,
// tests that they agree), so this package needs no knowledge of the wire.
const (
	// OutcomeWritten: the file was written (replaced, or in place).
	OutcomeWritten = string(filewriter.Written)
	// OutcomeUnchanged: the file already held the value.
	OutcomeUnchanged = string(filewriter.Unchanged)
	// OutcomeCollision: another secret resolving to the same file won (R8).
	OutcomeCollision = string(filewriter.LostCollision)
	// OutcomeFailed: the secret could not be applied; Err says why.
	OutcomeFailed = string(filewriter.Failed)
	// OutcomeEnvOnly: an env-only secret, set for new processes.
	OutcomeEnvOnly = "env"
	// OutcomeNotInjected: a secret with neither target (R1).
	OutcomeNotInjected = "not_injected"
	// OutcomeFileDisabled: the deployment turned file delivery off.
	OutcomeFileDisabled = "file_disabled"
	// OutcomeDisabled: the secret is paused; no env, no file.
	OutcomeDisabled = "disabled"
	// OutcomeNotInScope: the secret's scope leaves this workspace out; it
	// is treated like a deleted one (no env; a file written before stays).
	OutcomeNotInScope = "not_in_scope"
)
