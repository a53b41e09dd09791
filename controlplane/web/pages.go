package web

import (
	"sort"
	"time"
)

// Page is what every template receives: the layout's fields plus one of the
// page-specific bodies below. No field ever holds a secret value.
type Page struct {
	// Title is the page's <title> and heading.
	Title string
	// User is the logged-in username; "" on the login page.
	User string
	// Nav is the current section: "secrets", "workspaces", "users" or
	// "password".
	Nav string
	// ShowUsers adds the users page to the navigation (admins and
	// auditors).
	ShowUsers bool
	// Notice is a one-line confirmation of the last action ("" for none).
	Notice string
	// Body is the page-specific data: a *Login, *Secrets, *SecretForm,
	// *DeleteSecret, *Workspaces, *Workspace, *WorkspaceToken,
	// *DeleteWorkspace, *Problem or one of users.go's.
	Body any
}

// Login is the body of the login page.
type Login struct {
	// Login is the username or e-mail typed, kept after a refusal.
	Login string
	// Error is why the last attempt was refused ("" for none).
	Error string
	// SSOName is the single sign-on provider's name for the "Sign in
	// with …" link; "" when single sign-on is off.
	SSOName string
	// PasswordDisabled hides the password form.
	PasswordDisabled bool
	// Next is the page to go to once signed in (a path on this site), ""
	// for the default.
	Next string
}

// SSOCLI is the body of the page that asks before a single sign-on is
// handed to the CLI's loopback listener.
type SSOCLI struct {
	// Username is who the CLI will be signed in as.
	Username string
	// Listener is the CLI's loopback address (127.0.0.1:PORT).
	Listener string
	// ContinueURL is the listener's URL with the one-time code, which is
	// useless without the PKCE verifier the CLI keeps.
	ContinueURL string
}

// Usage is the use of every cap of R9 by one user, counted on stored bytes.
type Usage struct {
	Secrets, MaxSecrets int
	Bytes, MaxBytes     int
	EnvBytes, MaxEnv    int
	MaxSecretBytes      int
	MaxEnvNameBytes     int
}

// SecretRow is one secret in the list: metadata only.
type SecretRow struct {
	Name, Description, EnvName, FilePath string
	// Enabled is false for a paused secret, which agents do not deliver.
	Enabled bool
	// Workspaces is the secret's scope; empty means all workspaces.
	Workspaces []string
	UpdatedAt  time.Time
}

// Secrets is the body of the secrets list.
type Secrets struct {
	Rows  []SecretRow
	Usage Usage
}

// FieldError is one refused field of a form, for its error summary: the
// id of the field's input, its label and the server's explanation.
type FieldError struct{ ID, Label, Message string }

// formField is one field of a form: its error key, the id of its input and
// its label.
type formField struct{ key, id, label string }

// secretFormFields are the secret form's fields in the order the form
// shows them, with their labels.
var secretFormFields = []formField{
	{"name", "name", "Name"},
	{"description", "description", "Description"},
	{"env_name", "env_name", "Environment variable"},
	{"file_path", "file_path", "File path"},
	{"value", "value", "Value"},
	{"workspaces", "workspaces", "Workspaces"},
	{"enabled", "enabled", "Enabled"},
}

// Summary lists f's errors in the order of the form's fields, each under
// its label; an error for a field the form does not show comes last,
// under its name.
func (f *SecretForm) Summary() []FieldError { return summary(secretFormFields, f.Errors) }

// summary lists errs in the order of fields, each under its label; an
// error for a field not in fields comes last, under its key, sorted.
func summary(fields []formField, errs map[string]string) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	for _, fld := range fields {
		if m, ok := errs[fld.key]; ok {
			out = append(out, FieldError{ID: fld.id, Label: fld.label, Message: m})
			seen[fld.key] = true
		}
	}
	var rest []string
	for k := range errs {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, FieldError{ID: k, Label: k, Message: errs[k]})
	}
	return out
}

// SecretForm is the body of the create and edit forms. The value is never
// part of it: after a refusal the form keeps every field but the value.
type SecretForm struct {
	// Edit is true for the edit form, whose Name cannot change.
	Edit                                 bool
	Name, Description, EnvName, FilePath string
	Enabled                              bool
	// Workspaces is the scope as typed: names and globs separated by
	// commas; "" means all workspaces.
	Workspaces string
	// Errors maps a field (name, value, description, env_name, file_path,
	// workspaces, enabled) to the server's explanation of its refusal.
	Errors map[string]string
	// Message is the refusal's summary ("" when the form is fresh).
	Message string
	Usage   Usage
}

// DeleteSecret is the body of the delete confirmation.
type DeleteSecret struct {
	Name, EnvName, FilePath string
}

// WorkspaceRow is one workspace in the list.
type WorkspaceRow struct {
	ID, Name, Owner string
	State           string
	Since           time.Time
}

// Workspaces is the body of the workspaces list.
type Workspaces struct {
	Rows      []WorkspaceRow
	ShowOwner bool
}

// Outcome is what the last apply did with one secret.
type Outcome struct {
	Secret string
	// Outcome is one line: "written", "unchanged", "lost a collision to X",
	// "failed: reason", "file delivery disabled", "disabled", ...
	Outcome string
	// Env and File are the targets applied ("" for none), File as the
	// owner wrote it; Resolved is the file it resolved to when that
	// differs ("~/x" → "/home/coder/x"), else "".
	Env, File, Resolved string
	// Bad marks a failure, for styling.
	Bad bool
}

// Workspace is the body of one workspace's page.
type Workspace struct {
	// ID is the workspace's ID, which the action URLs use.
	ID          string
	Name, Owner string
	// CanManage: the viewer is the owner or an admin, and sees the
	// rotate-token and delete actions.
	CanManage bool
	// TokenExpiresAt is when the agent token expires (zero: never);
	// TokenExpired says it has.
	TokenExpiresAt time.Time
	TokenExpired   bool
	State          string
	Since          time.Time
	// Connected says whether an agent connection is up, ConnectedSince
	// when the last one started, DisconnectedAt when it ended.
	Connected      bool
	ConnectedSince time.Time
	DisconnectedAt time.Time
	AgentVersion   string
	// AgentWarnings are about the connection (two agents with one token).
	AgentWarnings []string
	// ChangesPending: the owner's secrets changed after the last apply;
	// the agent applies them at its next start or reconnect (at once with
	// live files).
	ChangesPending bool
	// LiveFiles: the agent's last apply said it re-applies at once.
	LiveFiles bool
	// Applied is false when the agent has not reported an apply yet.
	Applied   bool
	AppliedAt time.Time
	Outcomes  []Outcome
	LeftFiles []string
	Warnings  []string
	// Logs is the startup-logs section (startlogs.go).
	Logs StartupLogs
	// Required are the secrets the template asks for, with their status.
	Required []Requirement
}

// Requirement is one secret a workspace's template asks for.
type Requirement struct {
	// Env and File are what it asks for ("" for none).
	Env, File   string
	Description string
	// DocsURL is an http(s) link (validated when the template was saved).
	DocsURL  string
	Required bool
	// Status is "met", "missing" or "paused".
	Status string
	// CreateURL is the new-secret form prefilled with the env name and
	// path, for a requirement that is not met ("" when the viewer cannot
	// create the owner's secrets).
	CreateURL string
}

// Problem is the body of an error page (404, 403, ...).
type Problem struct {
	Status  int
	Message string
}

// WorkspaceToken is the body of the page that shows a rotated agent token,
// the one time it is shown.
type WorkspaceToken struct {
	ID, Name, Owner string
	Token           string
	// ExpiresAt is when the token expires; zero: never.
	ExpiresAt time.Time
}

// DeleteWorkspace is the body of the workspace delete confirmation.
type DeleteWorkspace struct {
	ID, Name, Owner string
	// Connected says an agent is connected now and will be disconnected.
	Connected bool
}
