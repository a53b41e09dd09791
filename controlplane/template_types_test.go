package controlplane

import (
	"reflect"
	"slices"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
)

// TestTemplateTypesAgree: the CLI reads a template file into client's
// types and the server decodes it into store's (and proto's); a field added
// to one side only would be refused as unknown by the server or dropped
// by the CLI. Each pair must have the same JSON field names.
func TestTemplateTypesAgree(t *testing.T) {
	for _, pair := range []struct {
		name           string
		client, server reflect.Type
	}{
		{"Template", reflect.TypeFor[client.Template](), reflect.TypeFor[store.Template]()},
		{"Script", reflect.TypeFor[client.Script](), reflect.TypeFor[proto.Script]()},
		{"App", reflect.TypeFor[client.App](), reflect.TypeFor[proto.App]()},
		{"SSH", reflect.TypeFor[client.TemplateSSH](), reflect.TypeFor[proto.SSHSettings]()},
		{"SecretRequirement", reflect.TypeFor[client.SecretRequirement](), reflect.TypeFor[proto.SecretRequirement]()},
	} {
		c, s := keys(jsonFields(pair.client)), keys(jsonFields(pair.server))
		if !slices.Equal(c, s) {
			t.Errorf("%s: client fields %v, server fields %v", pair.name, c, s)
		}
	}
}

func keys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
