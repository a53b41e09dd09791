package controlplane

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// nestedUnknownKey finds a key, at any depth of data, that names no field
// of the struct type it decodes into, and returns its path
// ("template.secrets[0].requried"): a typo in a nested object (a
// workspace's template) gets the same clear error as one at the top. Only
// keys are reported, never values.
func nestedUnknownKey(data []byte, v any) (string, bool) {
	return walkUnknown(data, reflect.TypeOf(v), "")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walkUnknown(data []byte, t reflect.Type, at string) (string, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return "", false
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return "", false
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				return join(at, truncate(k, 64)), true
			}
			if p, ok := walkUnknown(obj[k], ft, join(at, k)); ok {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return "", false
		}
		for i, it := range items {
			if p, ok := walkUnknown(it, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); ok {
				return p, true
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return "", false
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := walkUnknown(obj[k], t.Elem(), join(at, truncate(k, 64))); ok {
				return p, true
			}
		}
	}
	return "", false
}

// jsonFields maps the lower-cased JSON name of each exported field of t
// (embedded structs' fields promoted) to its type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out[strings.ToLower(tag)] = f.Type
	}
	return out
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
