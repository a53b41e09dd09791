package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/dashboard"
	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
	"github.com/courierhq/courier/internal/strictjson"
)

// Validation is one field-level detail of an error response (declared in
// package client).
type Validation = client.Validation

// ErrorResponse is the body of every non-2xx answer of the REST API. It
// never contains a secret value.
type ErrorResponse struct {
	Message     string       `json:"message"`
	Validations []Validation `json:"validations,omitempty"`
	// MissingSecrets lists, when a workspace creation is refused because
	// its owner lacks required secrets, each of them and its status.
	MissingSecrets []client.SecretRequirementStatus `json:"missing_secrets,omitempty"`
}

// apiError is an error with the HTTP status and body it maps to.
type apiError struct {
	status int
	body   ErrorResponse
}

func (e *apiError) Error() string { return e.body.Message }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, body: ErrorResponse{Message: fmt.Sprintf(format, args...)}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"message":"internal error encoding the response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError maps err to a status and a JSON body. Known errors (validation,
// limits, conflicts, not found) get their own status and a message written
// for the client; anything else is logged and answered with a generic 500, so
// internal details never reach the client.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := a.explain(w, r, err)
	writeJSON(w, ae.status, ae.body)
}

// explain maps err to the status and body a client is shown (and sets any
// header that goes with it on w): the one classification behind the REST
// API's JSON errors and the dashboard's messages beside each field.
// Unknown errors are logged and become a generic 500.
func (a *api) explain(w http.ResponseWriter, r *http.Request, err error) *apiError {
	var (
		ae  *apiError
		le  *inject.LimitError
		es  inject.Errors
		fe  *inject.FieldError
		ce  *store.ConflictError
		mbe *http.MaxBytesError
		te  *identity.ThrottledError
		sl  *errStartsLimited
		dr  *dashboard.Refusal
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &dr):
		ae = &apiError{status: dr.Status, body: ErrorResponse{Message: dr.Message, Validations: dr.Validations}}
	case errors.As(err, &te):
		w.Header().Set("Retry-After", identity.RetryAfterSeconds(te.RetryAfter))
		ae = errorf(http.StatusTooManyRequests, "too many failed logins; try again later")
	case errors.As(err, &sl):
		secs := identity.RetryAfterSeconds(sl.retryAfter)
		w.Header().Set("Retry-After", secs)
		ae = errorf(http.StatusTooManyRequests, "too many sign-ins started from your address; try again in %s s", secs)
	case errors.As(err, &mbe):
		ae = errorf(http.StatusRequestEntityTooLarge, "request body is larger than the %d-byte limit", mbe.Limit)
		if r != nil && strings.Contains(r.URL.Path, "/secrets") {
			// A value that large is far over the per-secret cap: say so,
			// not only what the body was.
			ae.body.Message += fmt.Sprintf("; a secret's value may be at most %d bytes", a.cfg.Limits.MaxSecretBytes)
		}
	case errors.As(err, &le):
		ae = errorf(http.StatusBadRequest, "secret limit exceeded: %s", le.Error())
		if f := le.Field(); f != "" {
			ae.body.Validations = []Validation{{Field: f, Detail: le.Error()}}
		}
	case errors.As(err, &es):
		ae = errorf(http.StatusBadRequest, "invalid secret: %s", es.Error())
		for _, e := range es {
			ae.body.Validations = append(ae.body.Validations, Validation{Field: e.Field, Detail: e.Message})
		}
	case errors.As(err, &fe):
		ae = errorf(http.StatusBadRequest, "invalid secret: %s", fe.Error())
		ae.body.Validations = []Validation{{Field: fe.Field, Detail: fe.Message}}
	case errors.As(err, &ce) && ce.Scoped:
		// Overlapping scopes are a property of the request (the rule of
		// inject.ScopesOverlap), not of a taken name: a 400 that says why.
		ae = errorf(http.StatusBadRequest, "%s", ce.Message)
		ae.body.Validations = []Validation{{Field: ce.Field, Detail: ce.Message}}
	case errors.As(err, &ce):
		ae = errorf(http.StatusConflict, "%s", ce.Message)
		ae.body.Validations = []Validation{{Field: ce.Field, Detail: ce.Message}}
	case errors.Is(err, store.ErrNotFound):
		ae = errorf(http.StatusNotFound, "not found")
	case store.Unavailable(err) != nil:
		ae = a.unavailable(w, err)
	default:
		a.log.Error("request failed", routeField(r), errField(err))
		ae = errorf(http.StatusInternalServerError, "internal server error")
	}
	noteRefusal(r.Context(), ae)
	return ae
}

// decodeJSON reads a JSON request body into v: the Content-Type must be
// application/json (parameters allowed) or absent, the body at most
// MaxBodyBytes (413 otherwise), with no unknown fields and nothing after the
// value. Decode errors never quote the body, which may hold a value.
func (a *api) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType,
				"Content-Type must be application/json (got %q)", truncate(ct, 64))
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		return err // *http.MaxBytesError → 413
	}
	return decodeStrict(data, v)
}

// decodeStrict decodes exactly one JSON value from data into v, refusing
// unknown fields, as a 400 *apiError that never echoes input. Before
// decoding it refuses what encoding/json would silently alter or drop:
// invalid UTF-8 and lone-surrogate escapes (decoded as U+FFFD), and an
// object repeating a key at any depth (the last would win), including two
// keys that name the same struct field in different case.
func decodeStrict(data []byte, v any) error {
	// A syntax error is left to the decoder below, whose messages say more
	// (empty body, trailing data, offset).
	syntax := strictjson.Check(data)
	if syntax != nil && !errors.Is(syntax, strictjson.ErrSyntax) {
		return strictError(syntax)
	}
	if k, ok := foldedDuplicate(data, v); ok {
		return duplicateKey(k, "")
	}
	if err := decodeOne(data, v); err != nil || syntax == nil {
		return err
	}
	return errorf(http.StatusBadRequest, "request body is not valid JSON: %s",
		strings.TrimPrefix(syntax.Error(), strictjson.ErrSyntax.Error()+": "))
}

// decodeOne decodes exactly one JSON value from data into v, refusing
// unknown fields.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f, ok := unknownKey(data, v)
		if !ok {
			f, ok = nestedUnknownKey(data, v)
		}
		if ok {
			return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
				Message:     fmt.Sprintf("unknown field %q", f),
				Validations: []Validation{{Field: f, Detail: "is not a field of this request"}},
			}}
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "request body must hold exactly one JSON value")
	}
	return nil
}

// strictError maps a strictjson refusal to a 400.
func strictError(err error) error {
	var de *strictjson.DuplicateKeyError
	switch {
	case errors.As(err, &de):
		return duplicateKey(de.Key, de.Path)
	case errors.Is(err, strictjson.ErrInvalidUTF8):
		return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message: "request body is not valid UTF-8 JSON: " + err.Error() +
				"; send a value that is not UTF-8 text as value_base64",
		}}
	}
	return errorf(http.StatusBadRequest, "request body is not valid JSON (%s)", err.Error())
}

func duplicateKey(key, path string) error {
	where := ""
	if path != "" {
		where = " in the object at " + path
	}
	k := truncate(key, 64)
	return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
		Message:     fmt.Sprintf("duplicate key %q%s: each key may appear once", k, where),
		Validations: []Validation{{Field: k, Detail: "appears more than once"}},
	}}
}

// jsonError turns a decoder error into a 400 that names the problem but
// never echoes input: encoding/json's messages can quote values.
func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "request body is empty; a JSON object is required")
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "request body is not valid JSON (syntax error at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field == "":
		// The body itself has the wrong type (an array or a string where
		// an object goes): the Go type behind it means nothing to a client.
		return errorf(http.StatusBadRequest, "request body must be a JSON object, not a JSON %s", te.Value)
	case errors.As(err, &te):
		return &apiError{status: http.StatusBadRequest, body: ErrorResponse{
			Message:     fmt.Sprintf("field %q has the wrong JSON type (want %s)", te.Field, jsonKind(te.Type)),
			Validations: []Validation{{Field: te.Field, Detail: "wrong JSON type, want " + jsonKind(te.Type)}},
		}}
	}
	return errorf(http.StatusBadRequest, "request body is not valid JSON for this request (check field names and types)")
}

// unknownKey finds a top-level key of data (an object, or an array of
// objects) that v's struct type has no field for. encoding/json reports
// unknown fields only as error text, which is not to be parsed; this looks
// at the input instead. Keys match field names case-insensitively, as
// encoding/json does. The key is client-chosen, never a value, and is
// truncated all the same.
func unknownKey(data []byte, v any) (string, bool) {
	known := structFields(v)
	if known == nil {
		return "", false
	}
	var objs []map[string]json.RawMessage
	var one map[string]json.RawMessage
	if json.Unmarshal(data, &one) == nil {
		objs = append(objs, one)
	} else if json.Unmarshal(data, &objs) != nil {
		return "", false
	}
	for _, o := range objs {
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !known[strings.ToLower(k)] {
				return truncate(k, 64), true
			}
		}
	}
	return "", false
}

// foldedDuplicate finds two keys of one top-level object (or of one object
// of a top-level array) that differ but name the same field of v's struct
// type: encoding/json matches field names case-insensitively, so
// {"name":"a","NAME":"b"} would read as "b".
func foldedDuplicate(data []byte, v any) (string, bool) {
	known := structFields(v)
	if known == nil {
		return "", false
	}
	var objs []map[string]json.RawMessage
	var one map[string]json.RawMessage
	if json.Unmarshal(data, &one) == nil {
		objs = append(objs, one)
	} else if json.Unmarshal(data, &objs) != nil {
		return "", false
	}
	for _, o := range objs {
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen := map[string]bool{}
		for _, k := range keys {
			f := strings.ToLower(k)
			if known[f] && seen[f] {
				return k, true
			}
			seen[f] = true
		}
	}
	return "", false
}

// structFields returns the lower-cased JSON field names of v's struct type
// (through pointers and slices), or nil when v is not a struct.
func structFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	known := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		known[strings.ToLower(name)] = true
	}
	return known
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// jsonKind names the JSON a Go type is decoded from, as a client sees it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}
