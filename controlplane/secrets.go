package controlplane

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// SecretResponse is a secret as the API returns it: metadata only, never the
// value (R2). Declared once, in package client, for server and CLI alike.
type SecretResponse = client.Secret

func secretResponse(s store.Secret) SecretResponse {
	return SecretResponse{
		CreatedAt: s.CreatedAt.UTC(), Description: s.Description, EnvName: s.EnvName,
		FilePath: s.FilePath, ID: s.ID, Name: s.Name, UpdatedAt: s.UpdatedAt.UTC(), Enabled: s.Enabled,
		Workspaces: s.Workspaces,
	}
}

// createSecretRequest is the body of POST .../secrets and one entry of a
// json or yaml batch. The value comes as text in Value or, for bytes that
// are not UTF-8 text, base64-encoded (standard alphabet, padded) in
// ValueBase64; sending both is a 400.
type createSecretRequest struct {
	Name        string  `json:"name" yaml:"name"`
	Value       string  `json:"value" yaml:"value"`
	ValueBase64 *string `json:"value_base64" yaml:"value_base64"`
	Description string  `json:"description" yaml:"description"`
	EnvName     string  `json:"env_name" yaml:"env_name"`
	FilePath    string  `json:"file_path" yaml:"file_path"`
	// Enabled absent (or null) means true.
	Enabled *bool `json:"enabled" yaml:"enabled"`
	// Workspaces is the scope: workspace names and globs; absent or empty
	// means every workspace.
	Workspaces []string `json:"workspaces" yaml:"workspaces"`
}

// updateSecretRequest is the body of PATCH: an absent (or null) field is
// left as it is. Value and ValueBase64 are two spellings of the new value;
// at most one may be sent.
type updateSecretRequest struct {
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	Description *string `json:"description"`
	EnvName     *string `json:"env_name"`
	FilePath    *string `json:"file_path"`
	Enabled     *bool   `json:"enabled"`
	// Workspaces replaces the scope; [] resets it to every workspace.
	Workspaces *[]string `json:"workspaces"`
}

// FieldValueBase64 is the JSON name of the base64 spelling of a value.
const FieldValueBase64 = "value_base64"

// rawValue returns the value a request carries, decoding value_base64. It
// is an inject.Errors naming value_base64 when both spellings are sent or
// the base64 is malformed; the message never quotes the input.
func rawValue(text *string, b64 *string) (*string, error) {
	if b64 == nil {
		return text, nil
	}
	if text != nil {
		return nil, inject.Errors{{Field: FieldValueBase64,
			Message: "cannot be sent together with value: send the value once, as text in value or base64-encoded in value_base64"}}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*b64)
	if err != nil {
		var ce base64.CorruptInputError
		at := ""
		if errors.As(err, &ce) {
			at = fmt.Sprintf(" at byte %d", int64(ce))
		}
		return nil, inject.Errors{{Field: FieldValueBase64,
			Message: "is not valid base64" + at + " (standard alphabet with '=' padding, RFC 4648 section 4)"}}
	}
	v := string(raw)
	return &v, nil
}

var (
	errAdminReadOnly = errorf(http.StatusForbidden,
		"admins may list and read the metadata of other users' secrets but not create, change or delete them")
	errFileDisabled = &apiError{status: http.StatusBadRequest, body: ErrorResponse{
		Message:     "file targets are disabled on this deployment: secrets can only be delivered as environment variables",
		Validations: []Validation{{Field: inject.FieldFilePath, Detail: "this deployment disabled file delivery; leave file_path empty"}},
	}}
)

// secretOwner resolves {user} for a secret route. write asks for the right
// to change secrets, which only the owner has.
func (a *api) secretOwner(r *http.Request, write bool) (store.User, error) {
	u, err := a.resolveUser(r)
	if err != nil {
		return u, err
	}
	if write && u.ID != caller(r).ID {
		return store.User{}, errAdminReadOnly
	}
	return u, nil
}

func secretNotFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "secret %q not found", truncate(name, inject.MaxNameBytes))
	}
	return err
}

// checkLimits is the store's CheckFunc: it counts the stored (sealed) bytes
// of the user's whole set after the change inside the write transaction, so
// parallel writers cannot together pass a cap.
func (a *api) checkLimits(after []store.Secret) error {
	return a.cfg.Limits.CheckLimits(store.Usages(after))
}

// createOne validates, seals and stores one new secret of userID, limits
// checked in the write transaction. The REST create and the dashboard's
// create form both go through it.
func (a *api) createOne(ctx context.Context, userID string, req createSecretRequest) (store.Secret, error) {
	noteTarget(ctx, audit.Target{Kind: targetSecret, Name: truncate(req.Name, inject.MaxNameBytes), OwnerID: userID})
	s, err := a.prepare(userID, req, a.cfg.stamp())
	if err == nil {
		noteTarget(ctx, audit.Target{ID: s.ID})
		err = a.store.CreateSecrets(audit.InTx(ctx), userID, []store.Secret{s}, a.checkLimits)
	}
	return s, err
}

// updateOne validates and applies req to userID's secret name, limits
// checked in the write transaction; a missing secret is a 404. The REST
// PATCH and the dashboard's edit form both go through it.
func (a *api) updateOne(ctx context.Context, userID, name string, req updateSecretRequest) (store.Secret, error) {
	noteTarget(ctx, audit.Target{Kind: targetSecret, Name: name, OwnerID: userID})
	upd, value, err := a.prepareUpdate(userID, name, req)
	if err != nil {
		return store.Secret{}, err
	}
	s, err := a.store.UpdateSecret(audit.InTx(ctx), userID, name, upd, a.checkUpdate(userID, name, req, value))
	return s, secretNotFound(err, name)
}

// prepare validates req and returns it as a record to store, value sealed.
func (a *api) prepare(userID string, req createSecretRequest, now time.Time) (store.Secret, error) {
	var text *string
	if req.Value != "" || req.ValueBase64 == nil {
		text = &req.Value
	}
	value, err := rawValue(text, req.ValueBase64)
	if err != nil {
		return store.Secret{}, err
	}
	sec := inject.Secret{Name: req.Name, Value: *value, Description: req.Description,
		EnvName: req.EnvName, FilePath: req.FilePath}
	// Every field's problem in one answer, the workspaces' too: a form
	// shows them all at once instead of one more after each fix.
	verr, serr := sec.Validate(), inject.ValidateScope(req.Workspaces)
	if serr != nil {
		var es inject.Errors
		errors.As(verr, &es)
		var fe *inject.FieldError
		if errors.As(serr, &fe) {
			es = append(es, fe)
		}
		return store.Secret{}, es
	}
	if verr != nil {
		return store.Secret{}, verr
	}
	if a.cfg.DisableSecretFilePath && req.FilePath != "" {
		return store.Secret{}, errFileDisabled
	}
	if n := inject.StoredSize(len(sec.Value), a.sealer.Encrypted()); n > a.cfg.Limits.MaxSecretBytes {
		return store.Secret{}, &inject.LimitError{Cap: inject.CapSecretBytes,
			Limit: a.cfg.Limits.MaxSecretBytes, Want: n, Unit: "bytes"}
	}
	sealed, err := a.sealer.Seal([]byte(sec.Value), sealAD(userID, req.Name))
	if err != nil {
		return store.Secret{}, fmt.Errorf("seal value: %w", err)
	}
	return store.Secret{ID: uuid.NewString(), UserID: userID, Name: req.Name,
		Description: req.Description, EnvName: req.EnvName, FilePath: req.FilePath,
		Value: sealed, Format: a.valueFormat(), Enabled: req.Enabled == nil || *req.Enabled,
		Workspaces: inject.NormalizeScope(req.Workspaces), CreatedAt: now, UpdatedAt: now}, nil
}

// listSecrets: GET /api/v2/users/{user}/secrets → 200 [metadata]; with
// ?workspace=NAME only the secrets in scope for that workspace.
func (a *api) listSecrets(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ss, err := a.store.ListSecrets(r.Context(), u.ID)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list secrets: %w", err))
		return
	}
	// ?workspace=NAME keeps the secrets whose scope includes that
	// workspace name (whether or not such a workspace exists).
	ws, filter := r.URL.Query()["workspace"]
	out := make([]SecretResponse, 0, len(ss))
	for _, s := range ss {
		if filter && !inject.InScope(s.Workspaces, ws[0]) {
			continue
		}
		out = append(out, secretResponse(s))
	}
	writeJSON(w, http.StatusOK, out)
}

// getSecret: GET /api/v2/users/{user}/secrets/{name} → 200 metadata.
func (a *api) getSecret(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	s, err := a.store.GetSecret(r.Context(), u.ID, name)
	if err != nil {
		a.writeError(w, r, secretNotFound(err, name))
		return
	}
	writeJSON(w, http.StatusOK, secretResponse(s))
}

// createSecret: POST /api/v2/users/{user}/secrets → 201 metadata.
func (a *api) createSecret(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req createSecretRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.createOne(r.Context(), u.ID, req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, secretResponse(s))
}

// updateSecret: PATCH /api/v2/users/{user}/secrets/{name} → 200 metadata.
// An absent field stays; "" clears description, env_name or file_path; a
// value replaces the old one; enabled pauses or resumes delivery. A body
// with no field is a 400.
func (a *api) updateSecret(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	var req updateSecretRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.updateOne(r.Context(), u.ID, name, req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, secretResponse(s))
}

// prepareUpdate validates req and returns the update to store and the new
// raw value (nil when the value does not change).
func (a *api) prepareUpdate(userID, name string, req updateSecretRequest) (store.SecretUpdate, *string, error) {
	if req.Value == nil && req.ValueBase64 == nil && req.Description == nil && req.EnvName == nil &&
		req.FilePath == nil && req.Enabled == nil && req.Workspaces == nil {
		return store.SecretUpdate{}, nil, errorf(http.StatusBadRequest,
			"nothing to update: send at least one of value (or value_base64), description, env_name, file_path, enabled or workspaces")
	}
	upd := store.SecretUpdate{Description: req.Description, EnvName: req.EnvName,
		FilePath: req.FilePath, Enabled: req.Enabled, Workspaces: req.Workspaces, UpdatedAt: a.cfg.stamp()}
	value, err := rawValue(req.Value, req.ValueBase64)
	if err != nil {
		return upd, nil, err
	}
	var es inject.Errors
	check := func(err error) {
		var fe *inject.FieldError
		if errors.As(err, &fe) {
			es = append(es, fe)
		}
	}
	if value != nil {
		check(inject.ValidateValue(*value))
	}
	if req.Description != nil {
		check(inject.ValidateDescription(*req.Description))
	}
	if req.EnvName != nil {
		check(inject.ValidateEnvName(*req.EnvName))
	}
	if req.FilePath != nil {
		check(inject.ValidateFilePath(*req.FilePath))
	}
	if req.Workspaces != nil {
		check(inject.ValidateScope(*req.Workspaces))
	}
	if len(es) > 0 {
		return upd, nil, es
	}
	if a.cfg.DisableSecretFilePath && req.FilePath != nil && *req.FilePath != "" {
		return upd, nil, errFileDisabled
	}
	if value != nil {
		if n := inject.StoredSize(len(*value), a.sealer.Encrypted()); n > a.cfg.Limits.MaxSecretBytes {
			return upd, nil, &inject.LimitError{Cap: inject.CapSecretBytes,
				Limit: a.cfg.Limits.MaxSecretBytes, Want: n, Unit: "bytes"}
		}
		sealed, err := a.sealer.Seal([]byte(*value), sealAD(userID, name))
		if err != nil {
			return upd, nil, fmt.Errorf("seal value: %w", err)
		}
		upd.Value, upd.Format = sealed, a.valueFormat()
	}
	return upd, value, nil
}

// checkUpdate is the CheckFunc of a PATCH: the caps, and, when the update
// gives the secret an env target or a new value while it has one, that its
// value is text an environment variable can carry (inject.ValidateEnvValue).
// An env target added to a secret whose value is not changing makes it open
// the stored value; it runs inside the write transaction, so a concurrent
// update cannot slip a binary value past it. The value never reaches an
// error.
func (a *api) checkUpdate(userID, name string, req updateSecretRequest, value *string) store.CheckFunc {
	return func(after []store.Secret) error {
		for _, s := range after {
			if s.Name != name || s.EnvName == "" || (value == nil && req.EnvName == nil) {
				continue
			}
			v := value
			if v == nil {
				plain, err := a.sealer.Open(s.Value, sealAD(userID, name))
				if err != nil {
					return fmt.Errorf("open the stored value of a secret to check it: %w", err)
				}
				p := string(plain)
				v = &p
			}
			if err := inject.ValidateEnvValue(*v); err != nil {
				return err
			}
		}
		return a.checkLimits(after)
	}
}

// deleteSecret: DELETE /api/v2/users/{user}/secrets/{name} → 204.
func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	noteTarget(r.Context(), audit.Target{Kind: targetSecret, Name: name, OwnerID: u.ID})
	if err := a.store.DeleteSecret(audit.InTx(r.Context()), u.ID, name); err != nil {
		a.writeError(w, r, secretNotFound(err, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
