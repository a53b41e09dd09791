package dashboard

import (
	"fmt"
	"net/http"
	"time"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/web"
	"github.com/courierhq/courier/internal/utf8clip"
)

// Account → API tokens. Creating and revoking go through the Backend, the
// REST API's own paths, so the rules cannot differ. The new token is
// rendered once, on the page that answers the create (not a redirect: it
// must never sit in a cookie or a URL); the list shows no token, ever.

// maxTokenFormBytes bounds the create form: three short fields.
const maxTokenFormBytes = 8 << 10

// tokensPage renders the list and the create form f.
func (d *Dashboard) tokensPage(w http.ResponseWriter, r *http.Request, status int, f web.TokenForm) {
	ts, err := d.cfg.Store.ListAPITokens(r.Context(), d.b.Caller(r).ID)
	if err != nil {
		d.Error(w, r, fmt.Errorf("list API tokens: %w", err))
		return
	}
	body := &web.Tokens{Form: f, MaxLifetime: identity.FormatLifetime(d.cfg.MaxTokenLifetime)}
	now := d.cfg.Now()
	for _, t := range ts {
		body.Rows = append(body.Rows, web.TokenRow{Name: t.Name, Scope: string(t.Scope), CreatedAt: t.CreatedAt,
			ExpiresAt: t.ExpiresAt, Expired: !t.ExpiresAt.After(now), LastUsedAt: t.LastUsedAt, LastUsedAddr: t.LastUsedAddr})
	}
	d.Render(w, r, status, "tokens", &web.Page{Title: "API tokens", Nav: "tokens", Body: body})
}

// tokens: GET /account/tokens.
func (d *Dashboard) tokens(w http.ResponseWriter, r *http.Request) {
	life := min(identity.DefaultLifetime, d.cfg.MaxTokenLifetime)
	d.tokensPage(w, r, http.StatusOK, web.TokenForm{Lifetime: identity.FormatLifetime(life), Scope: string(identity.DefaultScope)})
}

// createToken: POST /account/tokens/new shows the new token once, or the
// form again with the refusal beside each field.
func (d *Dashboard) createToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenFormBytes)
	if err := r.ParseForm(); err != nil {
		d.Error(w, r, formError())
		return
	}
	name, lifetime, scope := r.PostFormValue("name"), r.PostFormValue("lifetime"), r.PostFormValue("scope")
	t, tok, err := d.b.MintToken(r, d.b.Caller(r), name, lifetime, scope)
	if err != nil {
		p := d.b.Explain(w, r, err)
		f := web.TokenForm{Name: name, Lifetime: lifetime, Scope: scope, Message: p.Message, Errors: fieldErrors(p)}
		if p.Status == http.StatusConflict && d.justCreated(r, name, lifetime, scope) {
			// The same form sent twice (a double click, a reload): the
			// browser shows this answer, not the first one that held the
			// token, which is never shown again. Say so plainly.
			f.Errors = nil
			f.Message = fmt.Sprintf("a token named %q was created a moment ago by this same form, sent twice; its value was on the first answer, "+
				"which your browser did not show. Revoke it below and create it again.", utf8clip.Clip(name, identity.MaxNameBytes))
		}
		d.tokensPage(w, r, p.Status, f)
		return
	}
	d.Render(w, r, http.StatusOK, "token_created", &web.Page{Title: "Token created", Nav: "tokens",
		Body: &web.TokenCreated{Name: t.Name, Scope: string(t.Scope), Token: tok, ExpiresAt: t.ExpiresAt}})
}

// justCreatedWithin is how recent a token of the same name must be for a
// refused create to be taken as the same form sent twice.
const justCreatedWithin = time.Minute

// justCreated reports whether the caller's token name was created within
// justCreatedWithin with the lifetime and scope this form asks for: the
// same form, sent twice.
func (d *Dashboard) justCreated(r *http.Request, name, lifetime, scope string) bool {
	life, err := identity.ParseLifetime(lifetime, 0)
	if err != nil {
		return false
	}
	ts, err := d.cfg.Store.ListAPITokens(r.Context(), d.b.Caller(r).ID)
	if err != nil {
		return false
	}
	for _, t := range ts {
		if t.Name != name {
			continue
		}
		gap := t.ExpiresAt.Sub(t.CreatedAt) - life
		return d.cfg.Now().Sub(t.CreatedAt) < justCreatedWithin && string(t.Scope) == scope &&
			gap > -time.Minute && gap < time.Minute
	}
	return false
}

// ownToken finds the caller's token {name}; another user's, like a
// missing one, is a 404.
func (d *Dashboard) ownToken(r *http.Request) (store.APIToken, error) {
	name := r.PathValue("name")
	ts, err := d.cfg.Store.ListAPITokens(r.Context(), d.b.Caller(r).ID)
	if err != nil {
		return store.APIToken{}, fmt.Errorf("list API tokens: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return store.APIToken{}, refusef(http.StatusNotFound, "token %q not found", utf8clip.Clip(name, identity.MaxNameBytes))
}

// confirmRevoke: GET /account/tokens/{name}/revoke asks first.
func (d *Dashboard) confirmRevoke(w http.ResponseWriter, r *http.Request) {
	t, err := d.ownToken(r)
	if err != nil {
		d.Error(w, r, err)
		return
	}
	d.Render(w, r, http.StatusOK, "token_revoke", &web.Page{Title: "Revoke " + t.Name, Nav: "tokens",
		Body: &web.RevokeToken{Name: t.Name, LastUsedAt: t.LastUsedAt}})
}

// revokeToken: POST /account/tokens/{name}/revoke.
func (d *Dashboard) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := d.b.RevokeToken(r, d.b.Caller(r), name); err != nil {
		d.Error(w, r, err)
		return
	}
	d.redirectNotice(w, r, "/account/tokens", fmt.Sprintf("Revoked token %q: it no longer works.", name))
}
