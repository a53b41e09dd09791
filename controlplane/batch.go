package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
)

// Batch formats of POST /api/v2/users/{user}/secrets/batch.
//
//   - "json": a JSON array of objects with the fields of a create request:
//     [{"name","value" or "value_base64","description","env_name",
//     "file_path","enabled"}]; unknown fields and repeated keys are
//     refused; enabled absent means true.
//   - "yaml": the same list in YAML (a sequence of mappings with the same
//     keys); unknown keys are refused.
//   - "env": dotenv lines. Each KEY=VALUE line becomes a secret named KEY
//     with env_name KEY. Blank lines and lines starting with '#' are
//     skipped; a leading "export " is ignored; white space around KEY and
//     around an unquoted VALUE is trimmed, and an unquoted VALUE ends at
//     " #" (a comment). 'single-quoted' values are taken literally;
//     "double-quoted" values understand \n, \r, \t, \", \\ and may span
//     lines. Anything may follow the closing quote only as a " #" comment.
const (
	BatchFormatEnv  = "env"
	BatchFormatJSON = "json"
	BatchFormatYAML = "yaml"
)

type batchRequest struct {
	Format  string `json:"format"`
	Content string `json:"content"`
}

// batchEntry is one parsed entry and the label errors name it by: "line 3
// (API_KEY)" or "entry 2 (api-key)". Labels never include values.
type batchEntry struct {
	label string
	req   createSecretRequest
}

func batchError(label, field, detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
		Message:     fmt.Sprintf("batch import refused, nothing was created: %s: %s", label, detail),
		Validations: []Validation{{Field: field, Detail: label + ": " + detail}},
	}}
}

// batchSecrets: POST /api/v2/users/{user}/secrets/batch → 201 [metadata].
// Every entry is validated, names and targets must be unique in the batch,
// and the caps apply to the whole set: all are created or none.
func (a *api) batchSecrets(w http.ResponseWriter, r *http.Request) {
	u, err := a.secretOwner(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req batchRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	var entries []batchEntry
	switch req.Format {
	case BatchFormatEnv:
		entries, err = parseEnvBatch(req.Content)
	case BatchFormatJSON:
		entries, err = parseJSONBatch(req.Content)
	case BatchFormatYAML:
		entries, err = parseYAMLBatch(req.Content)
	default:
		err = &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message:     fmt.Sprintf("unknown batch format %q: use env, json or yaml", truncate(req.Format, 16)),
			Validations: []Validation{{Field: "format", Detail: "must be env, json or yaml"}},
		}}
	}
	if err == nil && len(entries) == 0 {
		err = batchError("content", "content", "holds no secrets")
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	secs, err := a.prepareBatch(u.ID, entries)
	if err == nil {
		auditBatch(r, u.ID, secs)
		err = a.store.CreateSecrets(audit.InTx(r.Context()), u.ID, secs, a.checkLimits)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]SecretResponse, len(secs))
	for i, s := range secs {
		out[i] = secretResponse(s)
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *api) prepareBatch(userID string, entries []batchEntry) ([]store.Secret, error) {
	now := a.cfg.stamp()
	// "field\x00value" → the entries using it so far. A name is unique; an
	// env name or file path may repeat only across scopes that cannot
	// overlap (the store's rule, checked here first to name the entries).
	seen := map[string][]int{}
	secs := make([]store.Secret, 0, len(entries))
	for i, e := range entries {
		s, err := a.prepare(userID, e.req, now)
		var (
			es inject.Errors
			fe *inject.FieldError
			le *inject.LimitError
		)
		switch {
		case errors.As(err, &es):
			return nil, batchError(e.label, es[0].Field, es.Error())
		case errors.As(err, &fe):
			return nil, batchError(e.label, fe.Field, fe.Error())
		case errors.As(err, &le):
			return nil, batchError(e.label, inject.FieldValue, le.Error())
		case errors.Is(err, errFileDisabled):
			return nil, batchError(e.label, inject.FieldFilePath, errFileDisabled.body.Message)
		case err != nil:
			return nil, err
		}
		for _, f := range []struct{ field, v string }{
			{inject.FieldName, s.Name}, {inject.FieldEnvName, s.EnvName}, {inject.FieldFilePath, s.FilePath},
		} {
			if f.v == "" {
				continue
			}
			key := f.field + "\x00" + f.v
			for _, j := range seen[key] {
				if f.field == inject.FieldName || inject.ScopesOverlap(secs[j].Workspaces, s.Workspaces) {
					return nil, batchError(e.label, f.field, fmt.Sprintf("%s %q is also used by %s", f.field, f.v, entries[j].label))
				}
			}
			seen[key] = append(seen[key], i)
		}
		secs = append(secs, s)
	}
	return secs, nil
}

func parseJSONBatch(content string) ([]batchEntry, error) {
	var reqs []createSecretRequest
	if err := decodeStrict([]byte(content), &reqs); err != nil {
		detail := "invalid JSON"
		var ae *apiError
		if errors.As(err, &ae) {
			detail = ae.body.Message
		}
		return nil, batchError("content", "content", "is not a JSON array of secrets: "+detail)
	}
	return labelled(reqs), nil
}

func parseYAMLBatch(content string) ([]batchEntry, error) {
	dec := yaml.NewDecoder(strings.NewReader(content))
	dec.KnownFields(true)
	var reqs []createSecretRequest
	if err := dec.Decode(&reqs); err != nil && !errors.Is(err, io.EOF) {
		// yaml.v3 errors quote offending scalars, which may be values: keep
		// only the line numbers.
		return nil, batchError("content", "content", "is not a YAML list of secrets"+yamlLines(err))
	}
	return labelled(reqs), nil
}

func labelled(reqs []createSecretRequest) []batchEntry {
	out := make([]batchEntry, len(reqs))
	for i, r := range reqs {
		out[i] = batchEntry{label: fmt.Sprintf("entry %d (%q)", i+1, truncate(r.Name, inject.MaxNameBytes)), req: r}
	}
	return out
}

// yamlLines returns " (line N, ...)" from a yaml.v3 error, or "".
func yamlLines(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		var lines []string
		if i := strings.Index(err.Error(), "line "); i >= 0 {
			f := strings.FieldsFunc(err.Error()[i+5:], func(r rune) bool { return r < '0' || r > '9' })
			if len(f) > 0 {
				lines = append(lines, f[0])
			}
		}
		if len(lines) == 0 {
			return ""
		}
		return " (syntax error at line " + lines[0] + ")"
	}
	var lines []string
	for _, e := range te.Errors {
		if i := strings.Index(e, "line "); i >= 0 {
			f := strings.FieldsFunc(e[i+5:], func(r rune) bool { return r < '0' || r > '9' })
			if len(f) > 0 {
				lines = append(lines, f[0])
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return " (wrong shape or unknown key at line " + strings.Join(lines, ", ") + ")"
}

// parseEnvBatch parses dotenv content as documented on BatchFormatEnv.
func parseEnvBatch(content string) ([]batchEntry, error) {
	content = strings.ReplaceAll(content, "\r\n", "\n")
	lines := strings.Split(content, "\n")
	var out []batchEntry
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimLeft(rest, " \t")
		}
		key, raw, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		label := fmt.Sprintf("line %d (%s)", lineNo, truncate(key, inject.MaxEnvNameBytes))
		if !ok {
			return nil, batchError(fmt.Sprintf("line %d", lineNo), "content", "is not KEY=VALUE")
		}
		if err := inject.ValidateEnvName(key); err != nil || key == "" {
			detail := "KEY is empty"
			var fe *inject.FieldError
			if errors.As(err, &fe) {
				detail = "KEY " + fe.Message
			}
			return nil, batchError(label, inject.FieldEnvName, detail)
		}
		raw = strings.TrimLeft(raw, " \t")
		var val string
		switch {
		case strings.HasPrefix(raw, "'"):
			end := strings.IndexByte(raw[1:], '\'')
			if end < 0 {
				return nil, batchError(label, inject.FieldValue, "single-quoted value has no closing quote on its line")
			}
			val = raw[1 : 1+end]
			if !trailingOK(raw[2+end:]) {
				return nil, batchError(label, inject.FieldValue, "unexpected text after the closing quote")
			}
		case strings.HasPrefix(raw, `"`):
			// The value may continue over the following lines.
			text := raw[1:]
			for {
				v, rest, closed, err := unquoteDouble(text)
				if err != nil {
					return nil, batchError(label, inject.FieldValue, err.Error())
				}
				if closed {
					if !trailingOK(rest) {
						return nil, batchError(label, inject.FieldValue, "unexpected text after the closing quote")
					}
					val = v
					break
				}
				if i+1 >= len(lines) {
					return nil, batchError(label, inject.FieldValue, "double-quoted value has no closing quote")
				}
				i++
				text += "\n" + lines[i]
			}
		default:
			if j := strings.Index(raw, " #"); j >= 0 {
				raw = raw[:j]
			}
			if j := strings.Index(raw, "\t#"); j >= 0 {
				raw = raw[:j]
			}
			val = strings.TrimSpace(raw)
		}
		out = append(out, batchEntry{label: label, req: createSecretRequest{Name: key, Value: val, EnvName: key}})
	}
	return out, nil
}

// trailingOK reports whether what follows a closing quote is blank or a
// comment.
func trailingOK(rest string) bool {
	rest = strings.TrimLeft(rest, " \t")
	return rest == "" || rest[0] == '#'
}

var errBadEscape = errors.New("double-quoted value has an unknown escape (use \\n, \\r, \\t, \\\" or \\\\)")

// unquoteDouble reads a double-quoted value whose opening quote is already
// consumed. closed is false when text ends before the closing quote.
func unquoteDouble(text string) (val, rest string, closed bool, err error) {
	var b bytes.Buffer
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch c {
		case '"':
			return b.String(), text[i+1:], true, nil
		case '\\':
			if i+1 >= len(text) {
				return "", "", false, nil
			}
			i++
			switch text[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(text[i])
			default:
				return "", "", false, errBadEscape
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false, nil
}
