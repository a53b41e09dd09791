package web

import "time"

// The bodies of the users pages (issue 19 part 3). Like every body, none
// holds a secret value, a password or a token.

// UserRow is one user in the users list.
type UserRow struct {
	Username, Email string
	// Role is "admin", "member" or "auditor"; Status "active" or
	// "suspended"; LoginType "password" or "oidc".
	Role, Status, LoginType string
	CreatedAt               time.Time
	// Self marks the viewer's own row (no suspend or delete offered).
	Self bool
}

// Users is the body of the users list. Manage is true for an admin (the
// forms to change a role, suspend, activate and delete); an auditor sees
// the list only.
type Users struct {
	Rows   []UserRow
	Manage bool
	// Roles are the roles a user can be given, in order.
	Roles []string
}

// DeleteUser is the body of the user delete confirmation.
type DeleteUser struct {
	Username, Email string
	// Secrets and Workspaces are how many of the user's are deleted too.
	Secrets, Workspaces int
}

// UserSecrets is the body of one user's secrets, read-only (admins and
// auditors): metadata only, as the secrets list shows it.
type UserSecrets struct {
	Username string
	Rows     []SecretRow
}

// PasswordForm is the body of the change-password form. The passwords
// typed are never rendered back.
type PasswordForm struct {
	// Errors maps a field (old_password, password, confirm) to why it was
	// refused.
	Errors map[string]string
	// Message is the refusal's summary ("" when the form is fresh).
	Message string
	// MinBytes is the shortest password accepted.
	MinBytes int
}
