// Package strictjson checks a JSON document for what encoding/json lets
// through silently: bytes that are not valid UTF-8 and escapes of lone UTF-16
// surrogates (both decoded as U+FFFD, so the value is altered without a
// word), and an object that repeats a key (the last one wins, so
// {"name":"a","name":"b"} reads as "b"). The control plane runs Check on
// every request body before decoding it, and the agent on every answer of
// the control plane, so neither side ever acts on a document it reads
// differently from its sender.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	// ErrInvalidUTF8 is wrapped when the document holds bytes that are not
	// valid UTF-8, or a \u escape of a lone UTF-16 surrogate.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrDuplicateKey is wrapped by *DuplicateKeyError.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrSyntax is wrapped when the document is not one JSON value.
	ErrSyntax = errors.New("not valid JSON")
)

// DuplicateKeyError names a key an object repeats and where the object is.
// Keys are chosen by the sender and never hold a value; Key is truncated to
// MaxKeyInError bytes all the same.
type DuplicateKeyError struct {
	// Key is the repeated key.
	Key string
	// Path locates the object: "" for the top level, then ".field" and
	// "[index]" steps, for example "[2]" or ".env".
	Path string
}

// MaxKeyInError bounds the key quoted by DuplicateKeyError.
const MaxKeyInError = 64

// Error says which key repeats and where.
func (e *DuplicateKeyError) Error() string {
	where := "the top-level object"
	if e.Path != "" {
		where = "the object at " + e.Path
	}
	return fmt.Sprintf("key %q appears more than once in %s", truncate(e.Key, MaxKeyInError), where)
}

// Unwrap makes errors.Is(err, ErrDuplicateKey) true.
func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// Check reports whether data is one JSON value that encoding/json would
// decode without altering anything: valid UTF-8, no lone-surrogate escapes,
// no object repeating a key (keys compared exactly, after unescaping; a
// caller decoding into structs, whose field names match case-insensitively,
// checks folded keys itself). Errors never quote string values.
func Check(data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: the document holds bytes that are not valid UTF-8 (at byte %d)", ErrInvalidUTF8, invalidAt(data))
	}
	if off, ok := loneSurrogate(data); ok {
		return fmt.Errorf("%w: the document escapes a lone UTF-16 surrogate (at byte %d)", ErrInvalidUTF8, off)
	}
	return checkKeys(data)
}

func invalidAt(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// loneSurrogate scans the strings of data for a \uD800–\uDFFF escape not
// paired as high then low surrogate, which encoding/json turns into U+FFFD.
// It returns the offset of the escape.
func loneSurrogate(data []byte) (int, bool) {
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !in {
			in = c == '"'
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if i+1 >= len(data) {
				return 0, false
			}
			if data[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(data, i+2)
			if !ok {
				return 0, false // a syntax error; the decoder reports it
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				// \uD8xx must be followed by a \uDCxx–\uDFxx escape.
				if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
					if lo, ok := hex4(data, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						i += 11
						continue
					}
				}
				return i, true
			case r >= 0xDC00 && r <= 0xDFFF:
				return i, true
			default:
				i += 5
			}
		}
	}
	return 0, false
}

func hex4(data []byte, at int) (int, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[at:at+4]), 16, 32)
	return int(v), err == nil
}

// MaxDepth is the deepest nesting of objects and arrays Check accepts, the
// same as encoding/json's own limit.
const MaxDepth = 10000

// frame is one open object or array during the walk.
type frame struct {
	object bool
	step   string          // how the parent reaches this value: ".key" or "[i]"
	keys   map[string]bool // objects: the keys read so far
	index  int             // arrays: the index of the next element
	key    string          // objects: the last key read
	expect bool            // objects: the next token is a key or '}'
}

// checkKeys walks data token by token, keeping one frame per open object or
// array, and refuses the first object that repeats a key. Its work is
// linear in len(data): paths are built only for an error.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	// step says how the value about to be read hangs off its parent.
	step := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			return "." + truncate(f.key, MaxKeyInError)
		}
		f.index++
		return "[" + strconv.Itoa(f.index-1) + "]"
	}
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			b.WriteString(f.step)
		}
		return b.String()
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the document ends early", ErrSyntax)
		}
		if err != nil {
			return fmt.Errorf("%w: %s", ErrSyntax, syntaxDetail(err))
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch {
		case top != nil && top.object && top.expect && tok != json.Delim('}'):
			k, _ := tok.(string)
			if top.keys == nil {
				top.keys = map[string]bool{}
			}
			if top.keys[k] {
				return &DuplicateKeyError{Key: k, Path: path()}
			}
			top.keys[k] = true
			top.key, top.expect = k, false
			continue
		case tok == json.Delim('{') || tok == json.Delim('['):
			if len(stack) >= MaxDepth {
				return fmt.Errorf("%w: objects and arrays nest deeper than %d", ErrSyntax, MaxDepth)
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), step: step(), expect: tok == json.Delim('{')})
			continue
		case tok == json.Delim('}') || tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
		default: // a scalar
			if top != nil && !top.object {
				top.index++
			}
		}
		// A value is complete.
		if len(stack) == 0 {
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the document holds more than one JSON value", ErrSyntax)
			}
			return nil
		}
		if top := stack[len(stack)-1]; top.object {
			top.expect = true
		}
	}
}

// syntaxDetail describes a decoder error by offset only: encoding/json's
// messages can quote input.
func syntaxDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the document ends early"
	}
	return "malformed document"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "..."
}
