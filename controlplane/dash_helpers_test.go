package controlplane

import (
	"bytes"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/courierhq/courier/controlplane/dashboard"
)

// The dashboard's cookies.
const (
	dashCookie   = dashboard.SessionCookie
	noticeCookie = dashboard.NoticeCookie
)

// browser is a cookie-keeping client for the dashboard that does not follow
// redirects, so tests see every 303. Its POSTs carry the headers a browser
// sends for a same-origin form (Sec-Fetch-Site, Origin) unless told
// otherwise. Every body it reads joins ts.bodies, which the server's cleanup
// scans for the canary.
type browser struct {
	ts *testServer
	c  *http.Client
}

func (ts *testServer) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{ts: ts, c: &http.Client{Jar: jar, Transport: ts.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) send(req *http.Request) resp {
	b.ts.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.ts.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.ts.bodiesMu.Lock()
	b.ts.bodies.Write(body)
	b.ts.bodiesMu.Unlock()
	return resp{status: res.StatusCode, body: body, header: res.Header}
}

func (b *browser) get(path string) resp {
	b.ts.t.Helper()
	req, _ := http.NewRequest("GET", b.ts.URL()+path, nil)
	return b.send(req)
}

// post sends form fields url-encoded; hdr overrides the same-origin headers.
func (b *browser) post(path string, form url.Values, hdr ...string) resp {
	b.ts.t.Helper()
	req, _ := http.NewRequest("POST", b.ts.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.sameOrigin(req, hdr)
	return b.send(req)
}

// postMultipart sends fields and, if file is not nil, value_file as an
// upload, the way the secret forms do.
func (b *browser) postMultipart(path string, fields map[string]string, file []byte, hdr ...string) resp {
	b.ts.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range []string{"name", "description", "env_name", "file_path", "workspaces", "value", "enabled_present", "enabled"} {
		if v, ok := fields[k]; ok {
			_ = mw.WriteField(k, v)
		}
	}
	fw, _ := mw.CreateFormFile("value_file", map[bool]string{true: "value.txt", false: ""}[file != nil])
	_, _ = fw.Write(file)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", b.ts.URL()+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	b.sameOrigin(req, hdr)
	return b.send(req)
}

func (b *browser) sameOrigin(req *http.Request, hdr []string) {
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.ts.URL())
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
}

// login logs b in and checks the redirect to the secrets page.
func (b *browser) login(user string) {
	b.ts.t.Helper()
	r := b.post("/login", url.Values{"login": {user}, "password": {testPassword}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account/secrets" {
		b.ts.t.Fatalf("login %s: status %d location %q body %s", user, r.status, r.header.Get("Location"), r.body)
	}
}

// wantPage checks the status of r and that it is a dashboard page with the
// security headers, and returns its body.
func wantPage(t *testing.T, r resp, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	checkHeaders(t, r.header)
	if !strings.Contains(string(r.body), `<meta name="viewport"`) {
		t.Fatalf("not a dashboard page: %s", r.body)
	}
	return string(r.body)
}

func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q allows inline code or script", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", h.Get("X-Content-Type-Options"))
	}
}

// fieldError is the text of the error shown beside field on a form page, ""
// if none.
func fieldError(page, field string) string {
	m := regexp.MustCompile(`<p class="error" id="` + regexp.QuoteMeta(field) + `-error">([^<]*)</p>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// inputValue is the value attribute of the input with id, or "<absent>".
func inputValue(page, id string) string {
	m := regexp.MustCompile(`<input id="` + regexp.QuoteMeta(id) + `" [^>]*value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return "<absent>"
	}
	return html.UnescapeString(m[1])
}

// cookieNamed returns the Set-Cookie of r named name.
func cookieNamed(t *testing.T, r resp, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie set; headers %v", name, r.header)
	return nil
}
