// Package web holds the dashboard's HTML templates and style sheet (embedded
// with go:embed, so a fresh machine needs Go alone) and the helpers that
// render them with the security headers every page carries. It knows nothing
// of users, secrets or the store: the control plane's handlers fill the page
// types declared here.
package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var files embed.FS

// ErrUnknownPage is returned by Render for a page name without a template.
var ErrUnknownPage = errors.New("web: unknown page")

// ContentSecurityPolicy is sent with every dashboard response: nothing but
// same-origin style sheets and images, forms posting only to this origin,
// no script at all, and no framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Renderer renders the dashboard's pages. It is safe for concurrent use.
type Renderer struct {
	pages map[string]*template.Template
}

// New parses every page template with the shared layout.
func New() (*Renderer, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &Renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") { // layout and partials
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		r.pages[base] = t
	}
	return r, nil
}

// Render writes page with data and status, after the security headers. The
// page is rendered to memory first, so a template error never sends half a
// page.
func (r *Renderer) Render(w http.ResponseWriter, status int, page string, data *Page) error {
	t, ok := r.pages[page]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownPage, page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("web: render %s: %w", page, err)
	}
	SetHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// SetHeaders sets the headers every dashboard response carries: the CSP,
// no MIME sniffing, no framing, no referrer, and no caching (pages list
// names and targets a shared cache has no business keeping).
func SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// Static serves the embedded style sheet under /static/.
func Static() http.Handler {
	sub, _ := fs.Sub(files, "static") // cannot fail: "static" is a valid path
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"kib":   KiB,
	"when":  When,
	"errid": func(field string) string { return field + "-error" },
	"domid": DOMID,
}

// DOMID turns prefix and a name (a secret's: any bytes but "/", "?" and
// "#") into a valid, unique HTML id: letters, digits and "-" stay, every
// other byte becomes "_" and two hex digits ("bad name!" → "bad_20name_21").
// "_" is always an escape, so two names never share an id.
func DOMID(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02x", c)
	}
	return b.String()
}

// KiB formats n bytes in KiB with one decimal ("40.1"), without the decimal
// when it is zero ("200"). It rounds up, so usage is never understated: one
// byte shows as 0.1 and a byte over 24 KiB as 24.1.
func KiB(n int) string {
	tenths := (n*10 + 1023) / 1024
	if tenths%10 == 0 {
		return fmt.Sprint(tenths / 10)
	}
	return fmt.Sprintf("%d.%d", tenths/10, tenths%10)
}

// When formats t for a page, in UTC to the second; the zero time is "never".
func When(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
