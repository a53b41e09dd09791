// Package proto is the wire contract between courier-agent and the control
// plane: the protocol version, the websocket endpoint and its headers, the
// HTTP routes served over the yamux session, and the JSON messages. Both sides
// import it, so a change to the protocol is a change to one package. The
// protocol is described in spec.md beside this file.
package proto

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Version is the protocol version this build speaks. The agent sends it in
// HeaderVersion on the websocket upgrade and on every request; the control
// plane refuses any other version with StatusVersionMismatch.
const Version = "1"

// Websocket endpoint and headers.
const (
	// ConnectPath is the control plane's websocket endpoint for agents.
	ConnectPath = "/api/v2/agent/connect"
	// HeaderVersion carries Version.
	HeaderVersion = "Courier-Agent-Protocol"
	// HeaderToken carries the agent token ("Authorization: Bearer" works too).
	HeaderToken = "Courier-Agent-Token"
	// HeaderAgentVersion carries the agent's release ("dev" for a build
	// without one), shown in the workspace's agent status. Optional.
	HeaderAgentVersion = "Courier-Agent-Version"
	// MaxAgentVersionBytes bounds HeaderAgentVersion; longer is cut.
	MaxAgentVersionBytes = 64
	// StatusVersionMismatch is the HTTP status of a refused version
	// (426 Upgrade Required); the body is an ErrorResponse naming both versions.
	StatusVersionMismatch = 426
	// MaxMessageBytes bounds one websocket message read by either side.
	MaxMessageBytes = 1 << 20
	// MaxBodyBytes bounds one JSON body on the yamux HTTP routes.
	MaxBodyBytes = 4 << 20
)

// Websocket close codes the control plane sends (4000-4999 is the range
// RFC 6455 leaves to applications).
const (
	// CloseReplaced closes a connection because a newer connection with the
	// same workspace's agent token replaced it ("newest wins"). An agent
	// that gets it should not reconnect at once: another agent is serving
	// the workspace, and reconnecting would replace it in turn.
	CloseReplaced = 4001
	// CloseReplacedReason is the close reason sent with CloseReplaced.
	CloseReplacedReason = "replaced by a newer agent connection for this workspace"
	// CloseRevoked closes a connection whose agent token stopped being
	// valid while it was connected: the workspace was deleted, its token
	// rotated or expired, or its owner suspended or deleted. The close
	// reason (at most 123 bytes) says which. Reconnecting with the same
	// token is refused (401 or 403), so an agent that gets it should not
	// retry soon: it waits its longest backoff, re-reading its token file,
	// until an operator writes a valid token there.
	CloseRevoked = 4003
	// CloseRevokedReason starts every close reason sent with CloseRevoked.
	CloseRevokedReason = "agent token revoked"
)

// Routes served by the control plane over the yamux session. The agent's
// http.Client dials a new yamux stream per connection; the host part of the
// URL is ignored (use BaseURL).
const (
	BaseURL       = "http://courier-agent-session"
	PathManifest  = "/v1/manifest"  // GET → Manifest
	PathSecrets   = "/v1/secrets"   // GET → SecretsResponse
	PathLifecycle = "/v1/lifecycle" // POST LifecycleReport → 204
	PathLogs      = "/v1/logs"      // POST LogReport → 204
	PathApply     = "/v1/apply"     // POST ApplyReport → 204
)

// Kinds of the streams the control plane opens to the agent: the first byte
// of every such stream. Other values are reserved for later stream kinds
// and make the agent close the stream (an agent older than a kind does the
// same, so adding a kind needs no version change).
const (
	// StreamSSH: the SSH protocol follows.
	StreamSSH byte = 0x01
	// StreamSecretsChanged: one SecretsChanged message follows (JSON, at
	// most MaxSecretsChangedBytes), then the control plane closes the
	// stream. It tells the agent that its owner's secrets changed.
	StreamSecretsChanged byte = 0x02
)

// MaxSecretsChangedBytes bounds the message of a StreamSecretsChanged
// stream.
const MaxSecretsChangedBytes = 1024

// SecretsChanged tells the agent that its owner's secrets changed after
// the last fetch. It carries no name, target or value: the agent fetches
// PathSecrets when it applies.
type SecretsChanged struct {
	// Revision is the owner's secrets revision after the change: it only
	// grows, and an agent whose last apply fetched this revision or a
	// newer one (SecretsResponse.Revision) has nothing to do.
	Revision int64 `json:"revision"`
}

// Manifest is what the agent needs to run its workspace.
type Manifest struct {
	WorkspaceID   string `json:"workspace_id"`
	WorkspaceName string `json:"workspace_name"`
	OwnerID       string `json:"owner_id"`
	OwnerName     string `json:"owner_name"`
	// Env is the template's environment (R5: secrets override it).
	Env map[string]string `json:"env"`
	// Scripts run once per agent process, in order, after file secrets are
	// written (R6).
	Scripts []Script `json:"scripts"`
	// Apps are long-running processes started after the scripts.
	Apps []App `json:"apps"`
	// FileDeliveryDisabled is true when the deployment turned file secrets
	// off; the control plane then also sends no file targets.
	FileDeliveryDisabled bool `json:"file_delivery_disabled,omitempty"`
	// LiveFiles is the template's live_files setting: when the control
	// plane says secrets changed, re-apply at once (files rewritten, env
	// for new processes) instead of at the next connect. The agent's own
	// --live-files turns it on too.
	LiveFiles bool `json:"live_files,omitempty"`
	// SSH is the template's SSH settings; absent means the defaults.
	SSH SSHSettings `json:"ssh"`
	// Secrets are the secrets the template asks for. The agent checks the
	// required ones against the secrets it receives before running the
	// startup scripts.
	Secrets []SecretRequirement `json:"secrets,omitempty"`
	// OnMissingSecrets is OnMissingWait ("" reads as it) or OnMissingStart.
	OnMissingSecrets string `json:"on_missing_secrets,omitempty"`
}

// What the agent does when a required secret is missing at apply time
// (Manifest.OnMissingSecrets, the template's on_missing_secrets).
const (
	// OnMissingWait: report StateWaitingForSecrets and run no startup
	// script until every required secret is there (the default).
	OnMissingWait = "wait"
	// OnMissingStart: run the startup scripts anyway.
	OnMissingStart = "start"
)

// SecretRequirement is one secret a template asks for: an env name, a file
// path or both, with a description and a documentation link for the owner.
// It is the template's YAML/JSON shape too.
type SecretRequirement struct {
	Env         string `json:"env,omitempty" yaml:"env"`
	File        string `json:"file,omitempty" yaml:"file"`
	Description string `json:"description,omitempty" yaml:"description"`
	// DocsURL is an http or https link explaining how to get the secret.
	DocsURL string `json:"docs_url,omitempty" yaml:"docs_url"`
	// Required blocks workspace creation and the startup scripts while the
	// secret is missing; false only recommends it.
	Required bool `json:"required,omitempty" yaml:"required"`
}

// SSHSettings is what a template allows over SSH besides sessions and sftp.
// The zero value allows forwarding, with remote forwards bound to loopback.
type SSHSettings struct {
	// DisableForwarding turns off local and remote port forwarding
	// (ssh -L, ssh -R, courier port-forward), Unix-socket forwarding and
	// agent forwarding (ssh -A), like OpenSSH's DisableForwarding.
	DisableForwarding bool `json:"disable_forwarding,omitempty" yaml:"disable_forwarding"`
	// GatewayPorts lets a remote forward bind the address the client names
	// (for example 0.0.0.0); otherwise remote forwards bind 127.0.0.1,
	// like OpenSSH's GatewayPorts.
	GatewayPorts bool `json:"gateway_ports,omitempty" yaml:"gateway_ports"`
}

// Script is one startup script of the template.
type Script struct {
	Name   string `json:"name"`
	Script string `json:"script"`
	// TimeoutSeconds bounds the run; 0 means no timeout.
	TimeoutSeconds int `json:"timeout_seconds"`
}

// App is one long-running process of the template.
type App struct {
	Slug    string `json:"slug"`
	Command string `json:"command"`
}

// Secret is a secret as the agent receives it: with its value, unless it
// is Disabled. A value is bytes; JSON strings carry only UTF-8 text
// (encoding/json replaces other bytes with U+FFFD on both ends), so the
// value travels in Value when it is valid UTF-8 and in ValueBase64
// otherwise, never in both. Use SetValue and RawValue rather than the
// fields.
type Secret struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Value is the value when it is valid UTF-8 text, else "".
	Value string `json:"value"`
	// ValueBase64 is the value, base64-encoded (standard alphabet, padded),
	// when it is not valid UTF-8. Added without a version change: an agent
	// that does not know it sees an empty value and refuses that secret
	// instead of writing altered bytes.
	ValueBase64 string    `json:"value_base64,omitempty"`
	EnvName     string    `json:"env_name,omitempty"`
	FilePath    string    `json:"file_path,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Disabled marks a paused secret: Value is empty, and the agent sets
	// no env and writes no file for it (OutcomeDisabled). A file written
	// before stays on disk (R7).
	Disabled bool `json:"disabled,omitempty"`
	// NotInScope marks a secret whose scope leaves this workspace out: it
	// carries no value and no targets, and the agent treats it like a
	// deleted secret (OutcomeNotInScope; a file written before stays, R7).
	NotInScope bool `json:"not_in_scope,omitempty"`
}

// ErrValueEncoding is returned by Secret.RawValue for a secret whose value
// fields are malformed: both set, or ValueBase64 not valid base64.
var ErrValueEncoding = errors.New("malformed secret value encoding")

// SetValue stores v in Value when it is valid UTF-8, else in ValueBase64.
func (s *Secret) SetValue(v string) {
	if utf8.ValidString(v) {
		s.Value, s.ValueBase64 = v, ""
		return
	}
	s.Value, s.ValueBase64 = "", base64.StdEncoding.EncodeToString([]byte(v))
}

// RawValue returns the value's bytes, decoding ValueBase64. The error wraps
// ErrValueEncoding and never holds the value.
func (s Secret) RawValue() (string, error) {
	if s.ValueBase64 == "" {
		return s.Value, nil
	}
	if s.Value != "" {
		return "", fmt.Errorf("%w: secret %q has both value and value_base64", ErrValueEncoding, s.Name)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s.ValueBase64)
	if err != nil {
		return "", fmt.Errorf("%w: secret %q: value_base64 is not valid base64", ErrValueEncoding, s.Name)
	}
	return string(b), nil
}

// String never prints the value.
func (s Secret) String() string { return "Secret{" + s.Name + "}" }

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// SecretsResponse is the body of GET PathSecrets.
type SecretsResponse struct {
	Secrets []Secret `json:"secrets"`
	// Revision is the owner's secrets revision these secrets are at least
	// as new as (0 from a control plane that does not count revisions).
	Revision int64 `json:"revision,omitempty"`
}

// Lifecycle states reported by the agent.
const (
	StateStarting   = "starting"
	StateReady      = "ready"
	StateStartError = "start_error"
	// StateWaitingForSecrets: a required secret is missing, so the startup
	// scripts wait (LifecycleReport.Missing names what is missing).
	StateWaitingForSecrets = "waiting_for_secrets"
	StateShuttingDown      = "shutting_down"
	StateOff               = "off"
)

// LifecycleReport is the body of POST PathLifecycle.
type LifecycleReport struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
	// Detail explains a start_error (which script failed and how).
	Detail string `json:"detail,omitempty"`
	// Missing names, for StateWaitingForSecrets, the env names and file
	// paths of the required secrets that are missing (never values).
	Missing []string `json:"missing,omitempty"`
}

// LogLine is one line of output from a startup script or app.
type LogLine struct {
	At     time.Time `json:"at"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Text   string    `json:"text"`
	// Source, when set, overrides the report's Source for this line. Sent
	// only to a control plane that announced FeatureStartupLogs.
	Source string `json:"source,omitempty"`
}

// LogReport is the body of POST PathLogs.
type LogReport struct {
	Source string    `json:"source"` // "script:NAME" or "app:SLUG"
	Lines  []LogLine `json:"lines"`
}

// Apply outcomes, one per secret.
const (
	OutcomeWritten      = "written"
	OutcomeUnchanged    = "unchanged"
	OutcomeCollision    = "lost_collision"
	OutcomeFailed       = "failed"
	OutcomeEnvOnly      = "env"
	OutcomeNotInjected  = "not_injected"
	OutcomeFileDisabled = "file_disabled"
	// OutcomeDisabled: the secret is paused; nothing was set or written.
	OutcomeDisabled = "disabled"
	// OutcomeNotInScope: the secret is scoped away from this workspace;
	// like a deleted one, nothing is set and a file written before stays.
	OutcomeNotInScope = "not_in_scope"
)

// Outcome is what happened to one secret in one apply. It never carries a
// value.
type Outcome struct {
	Secret string `json:"secret"`
	// Path is the file the secret resolved to, Target its file target as
	// the owner wrote it ("~/.npmrc").
	Path    string `json:"path,omitempty"`
	Target  string `json:"target,omitempty"`
	EnvName string `json:"env_name,omitempty"`
	Outcome string `json:"outcome"`
	// Error is set for OutcomeFailed; Winner for OutcomeCollision.
	Error  string `json:"error,omitempty"`
	Winner string `json:"winner,omitempty"`
	// InPlace is set for an OutcomeWritten file that was rewritten in place
	// rather than replaced atomically, and says why (a mount point, or an
	// owner, group or attribute the agent's user could not give a
	// replacement).
	InPlace string `json:"in_place,omitempty"`
}

// ApplyReport is the body of POST PathApply.
type ApplyReport struct {
	At       time.Time `json:"at"`
	Outcomes []Outcome `json:"outcomes"`
	Warnings []string  `json:"warnings,omitempty"`
	// LeftBehind are files earlier applies wrote that no secret targets
	// now (a path changed, a target cleared, a secret deleted). Courier
	// never deletes them (R7); an operator may. Sorted.
	LeftBehind []string `json:"left_behind,omitempty"`
	// SecretsRevision is the revision of the secrets this apply used
	// (SecretsResponse.Revision). The control plane records the revision
	// it served on the same session instead, so an agent's value is only
	// informative.
	SecretsRevision int64 `json:"secrets_revision,omitempty"`
	// LiveFiles says the agent re-applies as soon as it is told of a
	// change (its --live-files or the template's live_files), so the status
	// can say whether pending changes wait for a reconnect.
	LiveFiles bool `json:"live_files,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer on the agent routes and
// the connect endpoint.
type ErrorResponse struct {
	Message string `json:"message"`
}
