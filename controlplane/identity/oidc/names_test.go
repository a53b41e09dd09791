package oidc

import (
	"encoding/json"
	"testing"
)

func TestEmailVerifiedForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		bad  bool
	}{
		{`{"email_verified":true}`, true, false},
		{`{"email_verified":"true"}`, true, false},
		{`{"email_verified":false}`, false, false},
		{`{"email_verified":"false"}`, false, false},
		{`{"email_verified":null}`, false, false},
		{`{}`, false, false},
		{`{"email_verified":"yes"}`, false, true},
		{`{"email_verified":1}`, false, true},
	} {
		var c claims
		err := json.Unmarshal([]byte(tc.in), &c)
		if (err != nil) != tc.bad {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if got := c.EmailVerified != nil && bool(*c.EmailVerified); !tc.bad && got != tc.want {
			t.Errorf("%s: verified %v, want %v", tc.in, got, tc.want)
		}
	}
}
