package cli

// ExitCode maps an error returned by Execute to a process exit code: 1 for
// everything today; commands may wrap errors to choose others later.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return 1
}
