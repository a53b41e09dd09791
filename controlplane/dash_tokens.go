package controlplane

import (
	"fmt"
	"net/http"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
)

// Account → API tokens. Creating and revoking go through mintAPIToken and
// revokeAPIToken, the REST API's own paths, so the rules cannot differ.
// The new token is rendered once, on the page that answers the create
// (not a redirect: it must never sit in a cookie or a URL); the list shows
// no token, ever.

// maxTokenFormBytes bounds the create form: three short fields.
const maxTokenFormBytes = 8 << 10

// tokensPage renders the list and the create form f.
func (a *api) tokensPage(w http.ResponseWriter, r *http.Request, status int, f web.TokenForm) {
	ts, err := a.store.ListAPITokens(r.Context(), caller(r).ID)
	if err != nil {
		a.dashError(w, r, fmt.Errorf("list API tokens: %w", err))
		return
	}
	body := &web.Tokens{Form: f, MaxLifetime: identity.FormatLifetime(a.cfg.MaxTokenLifetime)}
	now := a.cfg.now()
	for _, t := range ts {
		body.Rows = append(body.Rows, web.TokenRow{Name: t.Name, Scope: string(t.Scope), CreatedAt: t.CreatedAt,
			ExpiresAt: t.ExpiresAt, Expired: !t.ExpiresAt.After(now), LastUsedAt: t.LastUsedAt, LastUsedAddr: t.LastUsedAddr})
	}
	a.render(w, r, status, "tokens", &web.Page{Title: "API tokens", Nav: "tokens", Body: body})
}

// dashTokens: GET /account/tokens.
func (a *api) dashTokens(w http.ResponseWriter, r *http.Request) {
	life := identity.DefaultLifetime
	if life > a.cfg.MaxTokenLifetime {
		life = a.cfg.MaxTokenLifetime
	}
	a.tokensPage(w, r, http.StatusOK, web.TokenForm{Lifetime: identity.FormatLifetime(life), Scope: string(identity.DefaultScope)})
}

// dashCreateToken: POST /account/tokens/new shows the new token once, or
// the form again with the refusal beside each field.
func (a *api) dashCreateToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenFormBytes)
	if err := r.ParseForm(); err != nil {
		a.dashError(w, r, errorf(http.StatusBadRequest, "the form could not be read; reload the page and try again"))
		return
	}
	req := createTokenRequest{Name: r.PostFormValue("name"), Lifetime: r.PostFormValue("lifetime"), Scope: r.PostFormValue("scope")}
	t, tok, err := a.mintAPIToken(r.Context(), r, caller(r), req)
	if err != nil {
		ae := a.explain(w, r, err)
		f := web.TokenForm{Name: req.Name, Lifetime: req.Lifetime, Scope: req.Scope, Message: ae.body.Message, Errors: map[string]string{}}
		for _, v := range ae.body.Validations {
			f.Errors[v.Field] = v.Detail
		}
		a.tokensPage(w, r, ae.status, f)
		return
	}
	a.render(w, r, http.StatusOK, "token_created", &web.Page{Title: "Token created", Nav: "tokens",
		Body: &web.TokenCreated{Name: t.Name, Scope: string(t.Scope), Token: tok, ExpiresAt: t.ExpiresAt}})
}

// ownToken finds the caller's token {name}; another user's, like a
// missing one, is a 404.
func (a *api) ownToken(r *http.Request) (store.APIToken, error) {
	name := r.PathValue("name")
	ts, err := a.store.ListAPITokens(r.Context(), caller(r).ID)
	if err != nil {
		return store.APIToken{}, fmt.Errorf("list API tokens: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return store.APIToken{}, errorf(http.StatusNotFound, "token %q not found", truncate(name, identity.MaxNameBytes))
}

// dashConfirmRevoke: GET /account/tokens/{name}/revoke asks first.
func (a *api) dashConfirmRevoke(w http.ResponseWriter, r *http.Request) {
	t, err := a.ownToken(r)
	if err != nil {
		a.dashError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "token_revoke", &web.Page{Title: "Revoke " + t.Name, Nav: "tokens",
		Body: &web.RevokeToken{Name: t.Name, LastUsedAt: t.LastUsedAt}})
}

// dashRevokeToken: POST /account/tokens/{name}/revoke.
func (a *api) dashRevokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.revokeAPIToken(r, caller(r), name); err != nil {
		a.dashError(w, r, err)
		return
	}
	a.redirectNotice(w, r, "/account/tokens", fmt.Sprintf("Revoked token %q: it no longer works.", name))
}
