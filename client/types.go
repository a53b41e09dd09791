package client

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The response types in this file are the REST API's JSON, declared once:
// the control plane aliases them (controlplane.SecretResponse is Secret, and
// so on), so the server and this client cannot drift apart. Keep this
// package free of server dependencies.

// User is a Courier user as the API shows it.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Admin    bool   `json:"admin"`
	// Role is RoleAdmin, RoleMember or RoleAuditor; Admin is true exactly
	// when it is RoleAdmin.
	Role string `json:"role"`
	// Status is StatusActive or StatusSuspended.
	Status string `json:"status"`
	// LoginType is LoginPassword or LoginOIDC (the user is linked to a
	// single sign-on identity).
	LoginType string    `json:"login_type"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateUserRequest creates a user (admin) or the first user.
type CreateUserRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
	Admin    bool   `json:"admin,omitempty"`
	// Role is optional ("" = member, or admin when Admin is set).
	Role string `json:"role,omitempty"`
}

// String omits the password.
func (r CreateUserRequest) String() string {
	return fmt.Sprintf("CreateUserRequest{username=%q email=%q admin=%t role=%q}", r.Username, r.Email, r.Admin, r.Role)
}

// LoginRequest logs in with a username or an email and a password.
type LoginRequest struct {
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
}

// String omits the password.
func (r LoginRequest) String() string {
	return fmt.Sprintf("LoginRequest{username=%q email=%q}", r.Username, r.Email)
}

// LoginResponse carries the new session token.
type LoginResponse struct {
	SessionToken string `json:"session_token"`
}

// String omits the token.
func (LoginResponse) String() string { return "LoginResponse{session_token=<redacted>}" }

// Script is one startup script of a workspace template.
type Script struct {
	Name           string `json:"name" yaml:"name"`
	Script         string `json:"script" yaml:"script"`
	TimeoutSeconds int    `json:"timeout_seconds" yaml:"timeout_seconds"`
}

// App is one long-running process of a workspace template.
type App struct {
	Slug    string `json:"slug" yaml:"slug"`
	Command string `json:"command" yaml:"command"`
}

// Template is what a workspace runs.
type Template struct {
	Env     map[string]string `json:"env" yaml:"env"`
	Scripts []Script          `json:"scripts" yaml:"scripts"`
	Apps    []App             `json:"apps" yaml:"apps"`
	// LiveFiles: the agent re-applies as soon as secrets change.
	LiveFiles bool        `json:"live_files,omitempty" yaml:"live_files"`
	SSH       TemplateSSH `json:"ssh" yaml:"ssh"`
	// Secrets are the secrets the workspace asks its owner for.
	Secrets []SecretRequirement `json:"secrets,omitempty" yaml:"secrets"`
	// OnMissingSecrets is "wait" (the default: startup scripts wait for
	// the required secrets) or "start" (they run anyway).
	OnMissingSecrets string `json:"on_missing_secrets,omitempty" yaml:"on_missing_secrets"`
}

// SecretRequirement is a secret a template asks for: an env name, a file
// path or both, with a description and an http(s) link for its owner.
type SecretRequirement struct {
	Env         string `json:"env,omitempty" yaml:"env"`
	File        string `json:"file,omitempty" yaml:"file"`
	Description string `json:"description,omitempty" yaml:"description"`
	DocsURL     string `json:"docs_url,omitempty" yaml:"docs_url"`
	// Required blocks workspace creation (unless allowed) and the startup
	// scripts while missing; false only recommends the secret.
	Required bool `json:"required,omitempty" yaml:"required"`
}

// Requirement statuses (SecretRequirementStatus.Status).
const (
	RequirementMet     = "met"
	RequirementPaused  = "paused"
	RequirementMissing = "missing"
)

// SecretRequirementStatus is a requirement and whether its owner's secrets
// in scope for the workspace meet it.
type SecretRequirementStatus struct {
	SecretRequirement
	// Status is RequirementMet, RequirementPaused (only a paused secret
	// delivers it) or RequirementMissing.
	Status string `json:"status"`
}

// TemplateSSH is what a workspace allows over SSH besides sessions and
// sftp. The zero value allows forwarding, remote forwards on loopback.
type TemplateSSH struct {
	// DisableForwarding turns off port, Unix-socket and agent forwarding.
	DisableForwarding bool `json:"disable_forwarding,omitempty" yaml:"disable_forwarding"`
	// GatewayPorts lets ssh -R bind the address the client names.
	GatewayPorts bool `json:"gateway_ports,omitempty" yaml:"gateway_ports"`
}

// CreateWorkspaceRequest creates a workspace for Owner (a username or ID).
type CreateWorkspaceRequest struct {
	Name     string   `json:"name"`
	Owner    string   `json:"owner"`
	Template Template `json:"template"`
	// AllowMissingSecrets creates the workspace even when its owner lacks
	// a secret the template requires.
	AllowMissingSecrets bool `json:"allow_missing_secrets,omitempty"`
}

// Workspace is a workspace as the API lists it.
type Workspace struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	OwnerID   string    `json:"owner_id"`
	OwnerName string    `json:"owner_name"`
	State     string    `json:"state"`
	StateAt   time.Time `json:"state_at"`
	CreatedAt time.Time `json:"created_at"`
	// SecretRequirements is the status of each secret the template asks
	// for (absent when it asks for none).
	SecretRequirements []SecretRequirementStatus `json:"secret_requirements,omitempty"`
}

// CreatedWorkspace is the answer to a create: the workspace plus its agent
// token, which the server shows this once.
type CreatedWorkspace struct {
	Workspace
	AgentToken string `json:"agent_token"`
}

// String omits the agent token.
func (w CreatedWorkspace) String() string {
	return fmt.Sprintf("CreatedWorkspace{id=%s name=%q owner=%q}", w.ID, w.Name, w.OwnerName)
}

// Secret is a user secret's metadata. The API never returns the value.
type Secret struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	EnvName     string `json:"env_name"`
	FilePath    string `json:"file_path"`
	// Enabled is false for a paused secret, which agents do not apply.
	Enabled bool `json:"enabled"`
	// Workspaces is the secret's scope: the workspace names and globs it
	// goes to; absent (empty) means every workspace of its owner.
	Workspaces []string  `json:"workspaces,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// CreateSecretRequest creates one secret. Value is required. It may hold
// any bytes: Client.CreateSecret sends a value that is not valid UTF-8, or
// holds NUL, base64-encoded in ValueBase64 (a JSON string would alter it).
type CreateSecretRequest struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64,omitempty"`
	Description string `json:"description,omitempty"`
	EnvName     string `json:"env_name,omitempty"`
	FilePath    string `json:"file_path,omitempty"`
	// Enabled nil means enabled.
	Enabled *bool `json:"enabled,omitempty"`
	// Workspaces scopes the secret to these workspace names and globs;
	// empty means every workspace.
	Workspaces []string `json:"workspaces,omitempty"`
}

// String omits the value (R2).
func (r CreateSecretRequest) String() string {
	return fmt.Sprintf("CreateSecretRequest{name=%q env=%q file=%q}", r.Name, r.EnvName, r.FilePath)
}

// GoString is String, for %#v.
func (r CreateSecretRequest) GoString() string { return r.String() }

// UpdateSecretRequest is a partial update: a nil field is left unchanged; a
// pointer to "" clears EnvName or FilePath (R10). Value may hold any bytes,
// as in CreateSecretRequest.
type UpdateSecretRequest struct {
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
	Description *string `json:"description,omitempty"`
	EnvName     *string `json:"env_name,omitempty"`
	FilePath    *string `json:"file_path,omitempty"`
	// Enabled pauses (false) or resumes (true) delivery.
	Enabled *bool `json:"enabled,omitempty"`
	// Workspaces replaces the scope; a pointer to an empty list resets it
	// to every workspace.
	Workspaces *[]string `json:"workspaces,omitempty"`
}

// Empty reports whether the update changes nothing.
func (r UpdateSecretRequest) Empty() bool {
	return r.Value == nil && r.ValueBase64 == nil && r.Description == nil && r.EnvName == nil && r.FilePath == nil &&
		r.Enabled == nil && r.Workspaces == nil
}

// IsBinary reports whether v must travel as value_base64: it is not valid
// UTF-8 or holds a NUL byte.
func IsBinary(v string) bool {
	return !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0
}

// String omits the value (R2).
func (r UpdateSecretRequest) String() string {
	return fmt.Sprintf("UpdateSecretRequest{value_set=%t description_set=%t env_set=%t file_set=%t enabled_set=%t workspaces_set=%t}",
		r.Value != nil || r.ValueBase64 != nil, r.Description != nil, r.EnvName != nil, r.FilePath != nil, r.Enabled != nil, r.Workspaces != nil)
}

// GoString is String, for %#v.
func (r UpdateSecretRequest) GoString() string { return r.String() }

// AgentStatus is what the control plane knows of a workspace's agent
// (GET /api/v2/workspaces/{workspace}/agent). It never holds a value.
type AgentStatus struct {
	WorkspaceID    string     `json:"workspace_id"`
	Workspace      string     `json:"workspace"`
	OwnerName      string     `json:"owner_name"`
	State          string     `json:"state"`
	StateAt        time.Time  `json:"state_at"`
	Connected      bool       `json:"connected"`
	ConnectedSince *time.Time `json:"connected_since"`
	DisconnectedAt *time.Time `json:"disconnected_at"`
	AgentVersion   string     `json:"agent_version"`
	RemoteAddr     string     `json:"remote_addr"`
	ReplacedAt     *time.Time `json:"replaced_at"`
	// AgentTokenExpiresAt is when the workspace's agent token stops being
	// accepted; nil: never.
	AgentTokenExpiresAt *time.Time `json:"agent_token_expires_at"`
	// Warnings are about the connection (another agent with the same
	// token); the apply's warnings are in LastApply.
	Warnings  []string `json:"warnings"`
	LastApply *Apply   `json:"last_apply"`
	// ChangesPending: the owner's secrets changed after the last apply.
	ChangesPending  bool  `json:"changes_pending"`
	SecretsRevision int64 `json:"secrets_revision"`
	// SecretRequirements is the status of each secret the workspace's
	// template asks for (absent when it asks for none).
	SecretRequirements []SecretRequirementStatus `json:"secret_requirements,omitempty"`
}

// Apply is one apply of an agent: an outcome per secret, warnings, and the
// files earlier applies left behind (R7) that an operator may remove.
type Apply struct {
	At         time.Time `json:"at"`
	Outcomes   []Outcome `json:"outcomes"`
	Warnings   []string  `json:"warnings"`
	LeftBehind []string  `json:"left_behind"`
	// SecretsRevision is the owner's secrets revision this apply used.
	SecretsRevision int64 `json:"secrets_revision"`
	// LiveFiles: the agent re-applies as soon as a secret changes.
	LiveFiles bool `json:"live_files"`
}

// Outcome is what one apply did with one secret.
type Outcome struct {
	Secret  string `json:"secret"`
	Outcome string `json:"outcome"`
	Path    string `json:"path"`
	// FilePath is the file target as the owner wrote it ("~/.npmrc");
	// Path is what the agent resolved it to.
	FilePath string `json:"file_path"`
	EnvName  string `json:"env_name"`
	Error    string `json:"error"`
	Winner   string `json:"winner"`
	InPlace  string `json:"in_place"` // for written: why not replaced atomically
}

// Batch formats accepted by the batch endpoint.
const (
	FormatEnv  = "env"
	FormatJSON = "json"
	FormatYAML = "yaml"
)

// BatchSecretsRequest creates every secret described by Content, or none.
type BatchSecretsRequest struct {
	Format  string `json:"format"`
	Content string `json:"content"`
}

// String omits the content, which holds values.
func (r BatchSecretsRequest) String() string {
	return fmt.Sprintf("BatchSecretsRequest{format=%q bytes=%d}", r.Format, len(r.Content))
}

// GoString is String, for %#v.
func (r BatchSecretsRequest) GoString() string { return r.String() }

// GoString is String, for %#v.
func (r LoginRequest) GoString() string { return r.String() }

// GoString is String, for %#v.
func (r CreateUserRequest) GoString() string { return r.String() }

// GoString is String, for %#v.
func (w CreatedWorkspace) GoString() string { return w.String() }

// GoString is String, for %#v.
func (r LoginResponse) GoString() string { return r.String() }
