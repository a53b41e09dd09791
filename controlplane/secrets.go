package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// SecretResponse is a secret as the API returns it: metadata only, never the
// value (R2). Every field is always present, "" when empty.
type SecretResponse struct {
	CreatedAt   time.Time `json:"created_at"`
	Description string    `json:"description"`
	EnvName     string    `json:"env_name"`
	FilePath    string    `json:"file_path"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Enabled is false for a paused secret, which agents do not apply.
	Enabled bool `json:"enabled"`
}

func secretResponse(s store.Secret) SecretResponse {
	return SecretResponse{
		CreatedAt: s.CreatedAt.UTC(), Description: s.Description, EnvName: s.EnvName,
		FilePath: s.FilePath, ID: s.ID, Name: s.Name, UpdatedAt: s.UpdatedAt.UTC(), Enabled: s.Enabled,
	}
}

// createSecretRequest is the body of POST .../secrets and one entry of a
// json or yaml batch.
type createSecretRequest struct {
	Name        string `json:"name" yaml:"name"`
	Value       string `json:"value" yaml:"value"`
	Description string `json:"description" yaml:"description"`
	EnvName     string `json:"env_name" yaml:"env_name"`
	FilePath    string `json:"file_path" yaml:"file_path"`
	// Enabled absent (or null) means true.
	Enabled *bool `json:"enabled" yaml:"enabled"`
}

// updateSecretRequest is the body of PATCH: an absent (or null) field is
// left as it is.
type updateSecretRequest struct {
	Value       *string `json:"value"`
	Description *string `json:"description"`
	EnvName     *string `json:"env_name"`
	FilePath    *string `json:"file_path"`
	Enabled     *bool   `json:"enabled"`
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
	us := make([]inject.Usage, len(after))
	for i, s := range after {
		us[i] = inject.Usage{Name: s.Name, StoredBytes: len(s.Value), HasEnv: s.EnvName != ""}
	}
	return a.cfg.Limits.CheckLimits(us)
}

// prepare validates req and returns it as a record to store, value sealed.
func (a *api) prepare(userID string, req createSecretRequest, now time.Time) (store.Secret, error) {
	sec := inject.Secret{Name: req.Name, Value: req.Value, Description: req.Description,
		EnvName: req.EnvName, FilePath: req.FilePath}
	if err := sec.Validate(); err != nil {
		return store.Secret{}, err
	}
	if a.cfg.DisableSecretFilePath && req.FilePath != "" {
		return store.Secret{}, errFileDisabled
	}
	if n := inject.StoredSize(len(req.Value), a.sealer.Encrypted()); n > a.cfg.Limits.MaxSecretBytes {
		return store.Secret{}, &inject.LimitError{Cap: inject.CapSecretBytes,
			Limit: a.cfg.Limits.MaxSecretBytes, Want: n, Unit: "bytes"}
	}
	sealed, err := a.sealer.Seal([]byte(req.Value), sealAD(userID, req.Name))
	if err != nil {
		return store.Secret{}, fmt.Errorf("seal value: %w", err)
	}
	return store.Secret{ID: uuid.NewString(), UserID: userID, Name: req.Name,
		Description: req.Description, EnvName: req.EnvName, FilePath: req.FilePath,
		Value: sealed, Format: a.valueFormat(), Enabled: req.Enabled == nil || *req.Enabled, CreatedAt: now, UpdatedAt: now}, nil
}

// listSecrets: GET /api/v2/users/{user}/secrets → 200 [metadata].
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
	out := make([]SecretResponse, 0, len(ss))
	for _, s := range ss {
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
	s, err := a.prepare(u.ID, req, a.cfg.stamp())
	if err == nil {
		err = a.store.CreateSecrets(r.Context(), u.ID, []store.Secret{s}, a.checkLimits)
	}
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
	upd, err := a.prepareUpdate(u.ID, name, req)
	if err == nil {
		var s store.Secret
		s, err = a.store.UpdateSecret(r.Context(), u.ID, name, upd, a.checkLimits)
		if err == nil {
			writeJSON(w, http.StatusOK, secretResponse(s))
			return
		}
	}
	a.writeError(w, r, secretNotFound(err, name))
}

func (a *api) prepareUpdate(userID, name string, req updateSecretRequest) (store.SecretUpdate, error) {
	if req.Value == nil && req.Description == nil && req.EnvName == nil && req.FilePath == nil && req.Enabled == nil {
		return store.SecretUpdate{}, errorf(http.StatusBadRequest,
			"nothing to update: send at least one of value, description, env_name, file_path or enabled")
	}
	var es inject.Errors
	check := func(err error) {
		var fe *inject.FieldError
		if errors.As(err, &fe) {
			es = append(es, fe)
		}
	}
	upd := store.SecretUpdate{Description: req.Description, EnvName: req.EnvName,
		FilePath: req.FilePath, Enabled: req.Enabled, UpdatedAt: a.cfg.stamp()}
	if req.Value != nil {
		check(inject.ValidateValue(*req.Value))
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
	if len(es) > 0 {
		return upd, es
	}
	if a.cfg.DisableSecretFilePath && req.FilePath != nil && *req.FilePath != "" {
		return upd, errFileDisabled
	}
	if req.Value != nil {
		if n := inject.StoredSize(len(*req.Value), a.sealer.Encrypted()); n > a.cfg.Limits.MaxSecretBytes {
			return upd, &inject.LimitError{Cap: inject.CapSecretBytes,
				Limit: a.cfg.Limits.MaxSecretBytes, Want: n, Unit: "bytes"}
		}
		sealed, err := a.sealer.Seal([]byte(*req.Value), sealAD(userID, name))
		if err != nil {
			return upd, fmt.Errorf("seal value: %w", err)
		}
		upd.Value, upd.Format = sealed, a.valueFormat()
	}
	return upd, nil
}

// deleteSecret: DELETE /api/v2/users/{user}/secrets/{name} → 204.
func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := a.store.DeleteSecret(r.Context(), u.ID, name); err != nil {
		a.writeError(w, r, secretNotFound(err, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
