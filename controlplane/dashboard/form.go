package dashboard

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/courierhq/courier/client"

	"github.com/courierhq/courier/inject"
)

// secretInput is a submitted secret form. value is the only field never
// rendered back.
type secretInput struct {
	name, description, envName, filePath string
	value                                string
	valueGiven                           bool // a non-empty textarea or a chosen file
	// workspaces is the scope field as typed; workspacesGiven says the
	// form had it (the list's toggle does not).
	workspaces      string
	workspacesGiven bool
	// enabled is nil when the form has no enabled field; the forms send a
	// checkbox (absent when unticked) with the marker enabled_present, the
	// list's toggle sends enabled=true or enabled=false.
	enabled *bool
}

// maxFieldBytes bounds each text field of a secret form but the value;
// the longest valid field (a file path) is 4 KiB.
const maxFieldBytes = 16 << 10

// readSecretForm reads a secret form, multipart (with a file upload) or
// url-encoded. Parts are read one at a time so that a value too large for
// the request still leaves the fields before it, which the form shows
// again. The value comes from the textarea (CRLF made LF) or the file
// (verbatim), never both.
func (d *Dashboard) readSecretForm(w http.ResponseWriter, r *http.Request) (secretInput, error) {
	var in secretInput
	r.Body = http.MaxBytesReader(w, r.Body, d.cfg.MaxBodyBytes)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var text, file, enabled string
	var fileGiven, enabledPresent bool
	set := func(field, v string) {
		switch field {
		case "name":
			in.name = v
		case "description":
			in.description = v
		case "env_name":
			in.envName = v
		case "file_path":
			in.filePath = v
		case "value":
			text = normalizeNewlines(v)
		case "enabled":
			enabled, enabledPresent = v, true
		case "enabled_present":
			enabledPresent = true
		case "workspaces":
			in.workspaces, in.workspacesGiven = v, true
		}
	}
	if mt != "multipart/form-data" {
		if err := r.ParseForm(); err != nil {
			return in, valueFieldError(err, d.cfg.MaxBodyBytes)
		}
		for _, f := range []string{"name", "description", "env_name", "file_path", "value", "enabled", "enabled_present", "workspaces"} {
			if _, ok := r.PostForm[f]; ok {
				set(f, r.PostFormValue(f))
			}
		}
	} else {
		mr, err := r.MultipartReader()
		if err != nil {
			return in, valueFieldError(err, d.cfg.MaxBodyBytes)
		}
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return in, valueFieldError(err, d.cfg.MaxBodyBytes)
			}
			field, limit := p.FormName(), int64(maxFieldBytes)
			if field == "value" || field == "value_file" {
				limit = d.cfg.MaxBodyBytes
			}
			b, err := io.ReadAll(io.LimitReader(p, limit+1))
			if err == nil && int64(len(b)) > limit {
				err = &http.MaxBytesError{Limit: limit}
			}
			if err != nil {
				if field == "value" || field == "value_file" {
					return in, valueFieldError(err, d.cfg.MaxBodyBytes)
				}
				return in, &Refusal{Status: http.StatusBadRequest, Message: "a field of the form is too long",
					Validations: []client.Validation{{Field: field, Detail: fmt.Sprintf("is longer than %d bytes", maxFieldBytes)}}}
			}
			if field == "value_file" {
				if p.FileName() != "" {
					file, fileGiven = string(b), true
				}
				continue
			}
			set(field, string(b))
		}
	}
	if enabledPresent {
		on := enabled == "true"
		in.enabled = &on
		if enabled != "" && enabled != "true" && enabled != "false" {
			return in, &Refusal{Status: http.StatusBadRequest, Message: "invalid secret",
				Validations: []client.Validation{{Field: "enabled", Detail: "must be true or false"}}}
		}
	}
	switch {
	case text != "" && fileGiven:
		return in, &Refusal{Status: http.StatusBadRequest, Message: "invalid secret",
			Validations: []client.Validation{{Field: inject.FieldValue, Detail: "type a value or upload a file, not both"}}}
	case fileGiven:
		in.value, in.valueGiven = file, true
	case text != "":
		in.value, in.valueGiven = text, true
	}
	return in, nil
}

// valueFieldError explains a form that could not be read: almost always a
// value (or file) larger than the request limit, so it is shown beside the
// value.
func valueFieldError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Refusal{Status: http.StatusRequestEntityTooLarge, Message: "the value is too large",
			Validations: []client.Validation{{Field: inject.FieldValue, Detail: fmt.Sprintf("the form is larger than the %d-byte request limit; a value may be at most %d bytes", limit, inject.MaxValueBytes)}}}
	}
	return formError()
}
