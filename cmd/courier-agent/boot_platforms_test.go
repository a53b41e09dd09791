package main_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
)

// The macOS and Windows boot recipes cannot run here (no launchd, no
// PowerShell or Task Scheduler): they are parsed and checked against the
// agent they start. The Windows agent itself runs under Wine in
// TestWindowsAgentUnderWine.

// plistValue is a decoded property-list value: string, bool, int64,
// []plistValue or map[string]plistValue.
type plistValue any

// decodePlist parses an XML property list (Apple's DTD: dict, array,
// string, integer, true, false), strictly: unknown elements, a key without
// a value and duplicate keys are errors.
func decodePlist(r io.Reader) (plistValue, error) {
	d := xml.NewDecoder(r)
	sawDoctype := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			sawDoctype = sawDoctype || strings.Contains(string(t), `DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`)
		case xml.StartElement:
			if t.Name.Local != "plist" || !sawDoctype {
				return nil, fmt.Errorf("root <%s>, doctype seen %t: want <plist> after Apple's DOCTYPE", t.Name.Local, sawDoctype)
			}
			v, err := plistNext(d)
			if err != nil {
				return nil, err
			}
			if end, err := plistNext(d); err != errEnd || end != nil {
				return nil, fmt.Errorf("<plist> holds more than one value")
			}
			return v, nil
		}
	}
}

var errEnd = errors.New("end of container")

// plistNext decodes the next value, or returns errEnd at its container's end.
func plistNext(d *xml.Decoder) (plistValue, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, errEnd
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("stray text %q", t)
			}
		case xml.StartElement:
			switch t.Name.Local {
			case "string", "integer":
				var s string
				if err := d.DecodeElement(&s, &t); err != nil {
					return nil, err
				}
				if t.Name.Local == "integer" {
					var n int64
					if _, err := fmt.Sscan(s, &n); err != nil {
						return nil, fmt.Errorf("integer %q: %w", s, err)
					}
					return n, nil
				}
				return s, nil
			case "true", "false":
				if err := d.Skip(); err != nil {
					return nil, err
				}
				return t.Name.Local == "true", nil
			case "array":
				var a []plistValue
				for {
					v, err := plistNext(d)
					if err == errEnd {
						return a, nil
					}
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				}
			case "dict":
				m := map[string]plistValue{}
				for {
					k, err := plistNext(d)
					if err == errEnd {
						return m, nil
					}
					if err != nil {
						return nil, err
					}
					key, ok := k.(plistKey)
					if !ok {
						return nil, fmt.Errorf("dict entry %v is not a <key>", k)
					}
					v, err := plistNext(d)
					if err != nil {
						return nil, fmt.Errorf("key %q: no value: %v", key, err)
					}
					if _, dup := m[string(key)]; dup {
						return nil, fmt.Errorf("duplicate key %q", key)
					}
					m[string(key)] = v
				}
			case "key":
				var s string
				if err := d.DecodeElement(&s, &t); err != nil {
					return nil, err
				}
				return plistKey(s), nil
			default:
				return nil, fmt.Errorf("unknown element <%s>", t.Name.Local)
			}
		}
	}
}

type plistKey string

// agentHelp is `courier-agent --help`: its flags and the variables it reads.
func agentHelp(t *testing.T) string {
	t.Helper()
	agentBin := build(t, t.TempDir(), "github.com/courierhq/courier/cmd/courier-agent")
	out, _ := exec.Command(agentBin, "--help").CombinedOutput()
	if !strings.Contains(string(out), "-token-file") {
		t.Fatalf("courier-agent --help does not list its flags:\n%s", out)
	}
	return string(out)
}

func TestLaunchdPlist(t *testing.T) {
	f, err := os.Open("boot/macos/com.courierhq.courier-agent.plist")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := decodePlist(f)
	if err != nil {
		t.Fatalf("not a valid XML property list: %v", err)
	}
	root, ok := v.(map[string]plistValue)
	if !ok {
		t.Fatalf("root is %T, want a dict", v)
	}
	if root["Label"] != "com.courierhq.courier-agent" || root["RunAtLoad"] != true || root["KeepAlive"] != true {
		t.Errorf("Label, RunAtLoad, KeepAlive = %v, %v, %v", root["Label"], root["RunAtLoad"], root["KeepAlive"])
	}
	help := agentHelp(t)
	args, _ := root["ProgramArguments"].([]plistValue)
	if len(args) == 0 || !path.IsAbs(fmt.Sprint(args[0])) || path.Base(fmt.Sprint(args[0])) != "courier-agent" {
		t.Fatalf("ProgramArguments = %v, want the agent's absolute path first", args)
	}
	for _, a := range args[1:] {
		if s := fmt.Sprint(a); strings.HasPrefix(s, "--") && !strings.Contains(help, "  "+s[1:]) {
			t.Errorf("ProgramArguments has %s, which courier-agent does not take", s)
		}
	}
	env, _ := root["EnvironmentVariables"].(map[string]plistValue)
	for _, name := range []string{"COURIER_AGENT_URL", "COURIER_AGENT_TOKEN_FILE"} {
		if env[name] == nil {
			t.Errorf("EnvironmentVariables lacks %s", name)
		}
	}
	for name, val := range env {
		if !strings.Contains(help, "("+name+")") {
			t.Errorf("EnvironmentVariables sets %s, which courier-agent does not read", name)
		}
		if name == "COURIER_AGENT_TOKEN" {
			t.Error("the token itself must not sit in the plist; use COURIER_AGENT_TOKEN_FILE")
		}
		if s, _ := val.(string); strings.HasPrefix(s, "~") {
			t.Errorf("%s = %q: launchd does not expand ~", name, s)
		}
	}
	for _, k := range []string{"StandardErrorPath"} {
		if s, _ := root[k].(string); !path.IsAbs(s) {
			t.Errorf("%s = %q, want an absolute path", k, s)
		}
	}
	if n, _ := root["ExitTimeOut"].(int64); n < 10 {
		t.Errorf("ExitTimeOut = %v: the agent needs time for its final report after SIGTERM", root["ExitTimeOut"])
	}

	// The checker refuses what launchd would.
	for name, bad := range map[string]string{
		"no doctype":    `<plist version="1.0"><dict/></plist>`,
		"key no value":  plistDoc(`<dict><key>Label</key></dict>`),
		"duplicate key": plistDoc(`<dict><key>A</key><true/><key>A</key><false/></dict>`),
		"unknown":       plistDoc(`<dict><key>A</key><bogus/></dict>`),
		"unclosed":      plistDoc(`<dict><key>A</key><string>x</dict>`),
	} {
		if _, err := decodePlist(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func plistDoc(body string) string {
	return `<?xml version="1.0"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0">` + body + `</plist>`
}

func TestWindowsBootScript(t *testing.T) {
	help := agentHelp(t)
	for file, musts := range map[string][]string{
		"install-agent.ps1":   {"--token-file", "-AtLogOn", "-RestartCount", "/inheritance:r", "ExecutionTimeLimit ([TimeSpan]::Zero)"},
		"install-service.ps1": {"--token-file", "--service", "--log-file", "-StartupType Automatic", "sc.exe failure", "/inheritance:r"},
	} {
		t.Run(file, func(t *testing.T) { checkPowerShellRecipe(t, help, "boot/windows/"+file, musts) })
	}
}

func checkPowerShellRecipe(t *testing.T, help, file string, musts []string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	flags := regexp.MustCompile(`--([a-z][a-z-]+)`).FindAllStringSubmatch(script, -1)
	if len(flags) < 3 {
		t.Fatalf("the script passes %d flags; want --url, --token-file, --data-dir", len(flags))
	}
	for _, f := range flags {
		if !strings.Contains(help, "  -"+f[1]+" ") && !strings.Contains(help, "  -"+f[1]+"\n") {
			t.Errorf("the script passes --%s, which courier-agent does not take", f[1])
		}
	}
	for _, want := range musts {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %s", want)
		}
	}
	if strings.Contains(script, "COURIER_AGENT_TOKEN=") || strings.Contains(script, "--token ") {
		t.Error("the token must reach the agent through a file, not its environment or arguments")
	}
	// "$Name:" inside a PowerShell string is a scope-qualified variable
	// ($env:X is the only one meant here): a parse error at run time.
	for _, m := range regexp.MustCompile(`\$([A-Za-z]+):`).FindAllStringSubmatch(script, -1) {
		if m[1] != "env" {
			t.Errorf("$%s: would be read as a scope-qualified variable; write ${%s}:", m[1], m[1])
		}
	}
}

// --service is refused outside Windows, and says why; --log-file gets the
// log lines instead of stderr.
func TestServiceFlagAndLogFile(t *testing.T) {
	agentBin := build(t, t.TempDir(), "github.com/courierhq/courier/cmd/courier-agent")
	dir := t.TempDir()
	token := dir + "/token"
	if err := os.WriteFile(token, []byte("not-a-real-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(agentBin, "--service", "--url", "http://127.0.0.1:1", "--token-file", token,
		"--data-dir", dir+"/data").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only on Windows") {
		t.Fatalf("--service on Linux: %v\n%s", err, out)
	}

	logFile := dir + "/agent.log"
	stderr := &logBuf{}
	agent := exec.Command(agentBin, "--url", "http://127.0.0.1:1", "--token-file", token,
		"--data-dir", dir+"/data", "--log-file", logFile)
	agent.Stderr = stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitUntil(t, "the log file", func() bool { return strings.Contains(read(logFile), "cannot reach the control plane") })
	if got := read(logFile); !strings.Contains(got, `"msg":"courier-agent starting"`) {
		t.Errorf("log file = %q, want the agent's JSON lines", got)
	}
	if s := stderr.String(); s != "" {
		t.Errorf("log lines went to stderr too: %s", s)
	}
}
