//go:build !unix

package cli

import "context"

// watchResize is a no-op where SIGWINCH does not exist.
func watchResize(context.Context, int, func(w, h int)) (stop func()) { return func() {} }
