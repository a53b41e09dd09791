package oidc_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The relying party starts no goroutine of its own; go-oidc's and
// net/http's must all have ended once the provider processes are gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
