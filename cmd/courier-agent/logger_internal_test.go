package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestLoggerNoStackTraceOnErrors: an error line carries no stack trace
// (operators read these logs; zap's production default adds one), on
// stderr and in a log file, in both formats.
func TestLoggerNoStackTraceOnErrors(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		for _, toFile := range []bool{false, true} {
			t.Run(format+map[bool]string{true: "/file", false: "/stderr"}[toFile], func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "agent.log")
				file := ""
				if toFile {
					file = path
				} else {
					// zap opens "stderr" when the logger is built.
					f, err := os.Create(path)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					saved := os.Stderr
					os.Stderr = f
					defer func() { os.Stderr = saved }()
				}
				log, err := newLogger("info", format, file)
				if err != nil {
					t.Fatal(err)
				}
				log.Error("an error an operator reads", zap.Error(errors.New("boom")))
				_ = log.Sync()
				b, _ := os.ReadFile(path)
				if !strings.Contains(string(b), "an error an operator reads") {
					t.Fatalf("the error line is missing: %q", b)
				}
				if strings.Contains(string(b), "stacktrace") || strings.Contains(string(b), "TestLoggerNoStackTraceOnErrors") {
					t.Fatalf("an error line carries a stack trace: %q", b)
				}
			})
		}
	}
}
