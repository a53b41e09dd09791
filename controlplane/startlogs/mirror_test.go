package startlogs

import (
	"reflect"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/store"
)

// TestRunMirrors: a run travels as proto.Run (agent to control plane),
// is stored as store.ScriptRun and shown as client.ScriptRun; a line as
// proto.LogLine, store.LogLine, client.LogLine. Each field of one must
// have its counterpart named here, so a field added on one side only
// fails this test rather than being dropped silently.
func TestRunMirrors(t *testing.T) {
	cases := []struct {
		typ    any
		fields map[string]string // field → where it goes
	}{
		{proto.Run{}, map[string]string{"Source": "ScriptRun.Source", "State": "ScriptRun.State", "ExitCode": "ScriptRun.ExitCode",
			"StartedAt": "ScriptRun.StartedAt", "DurationMS": "ScriptRun.Duration"}},
		{store.ScriptRun{}, map[string]string{"Source": "client Kind+Name", "State": "client State", "ExitCode": "client ExitCode",
			"StartedAt": "client StartedAt", "Duration": "client DurationMS", "UpdatedAt": "not shown (server's time of the report)"}},
		{client.ScriptRun{}, map[string]string{"Kind": "", "Name": "", "State": "", "ExitCode": "", "StartedAt": "", "DurationMS": ""}},
		{proto.LogLine{}, map[string]string{"At": "LogLine.At", "Stream": "LogLine.Stream", "Text": "LogLine.Text", "Source": "LogLine.Source"}},
		{store.LogLine{}, map[string]string{"Seq": "client Cursor", "Source": "client Kind+Name", "Stream": "client Stream",
			"At": "client At", "Text": "client Text"}},
		{client.LogLine{}, map[string]string{"Cursor": "", "Kind": "", "Name": "", "Stream": "", "At": "", "Text": ""}},
	}
	for _, tc := range cases {
		rt := reflect.TypeOf(tc.typ)
		if rt.NumField() != len(tc.fields) {
			t.Errorf("%v has %d fields, this test knows %d: map the new one", rt, rt.NumField(), len(tc.fields))
		}
		for i := range rt.NumField() {
			if _, ok := tc.fields[rt.Field(i).Name]; !ok {
				t.Errorf("%v.%s is not mapped: carry it through agentapi/startlogs and name it here", rt, rt.Field(i).Name)
			}
		}
	}
}
