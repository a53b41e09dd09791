// Package envmerge builds the one environment every process the agent spawns
// receives, by merging ordered layers with a fixed precedence:
//
//  1. Base: the agent's own environment, minus its private variables (the
//     agent token and the rest of COURIER_AGENT_*), so nothing the agent
//     starts can read its credentials;
//  2. Template: the workspace template's env;
//  3. Secrets: the user's env secrets — they win over the template (R5);
//  4. Session: what a session owns (HOME, USER, SHELL, TERM, SSH_*).
//
// A later layer wins, as in os/exec where the last duplicate wins.
//
// Secrets do not override session variables. The session layer holds facts
// about the running session (whose home, which terminal, which SSH
// connection); a secret that replaced them would break shells and tools in
// ways that look unrelated to the secret. The inject package already refuses
// env targets with those names, so this only matters for data that bypassed
// validation; Merge then keeps the session's value and warns (naming the
// variable, never the value).
//
// Names are compared exactly on Linux and macOS, and case-insensitively on
// Windows (Path and PATH are one variable there). The rule is the FoldCase
// option rather than runtime.GOOS, so both are testable everywhere.
package envmerge

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
)

var (
	// ErrInvalid is wrapped by every refusal of Merge: a NUL byte, an '=' in
	// a name or an empty name. The error names the variable and its layer,
	// never the value.
	ErrInvalid = errors.New("invalid environment variable")
	// ErrOptions is wrapped by Options.Validate failures.
	ErrOptions = errors.New("invalid envmerge options")
	// ErrBlockTooLarge is wrapped when the environment exceeds
	// Options.BlockLimit. The error names the secret variables that did not
	// fit and their sizes, never a value.
	ErrBlockTooLarge = errors.New("environment block too large")
)

// Layer names, as Result.Effective reports them and errors name them.
const (
	LayerBase     = "base"
	LayerTemplate = "template"
	LayerSecret   = "secret"
	LayerSession  = "session"
)

// DefaultBudgetBytes is Windows' environment block limit (32,767 UTF-16
// characters), the smallest of the platforms the agent runs on.
const DefaultBudgetBytes = 32 * 1024

// WindowsBlockLimit is the size of a Windows environment block the agent
// holds to, in UTF-16 code units: 32,767, the limit Windows documents for
// one variable and the user guide's "~32 KiB" for the whole block.
const WindowsBlockLimit = 32767

// Options controls a merge. The zero value is usable: case-sensitive names,
// no private variables, the default budget.
type Options struct {
	// FoldCase makes names case-insensitive, as on Windows. When two layers
	// set names that differ only by case, the later layer's value wins and
	// the earlier spelling is kept (Windows keeps the first spelling too).
	// DefaultOptions sets it to runtime.GOOS == "windows".
	FoldCase bool
	// Private lists names removed from the Base layer; an entry ending in
	// '*' removes every name with that prefix. DefaultOptions lists the
	// agent's credentials and configuration (COURIER_AGENT_*).
	Private []string
	// BudgetBytes is the size above which Result.OverBudget is set and a
	// warning issued. 0 means DefaultBudgetBytes.
	BudgetBytes int
	// BlockLimit is a hard cap on the environment block in UTF-16 code
	// units, counted as Windows does: each "NAME=value" plus its NUL, plus
	// the final NUL. Over it, With refuses with ErrBlockTooLarge naming the
	// secret variables that did not fit, rather than let CreateProcess or
	// the program fail obscurely. 0 means no cap. DefaultOptions sets
	// WindowsBlockLimit on Windows.
	BlockLimit int
}

// DefaultOptions returns the options the agent uses on this OS.
func DefaultOptions() Options { return OptionsFor(runtime.GOOS) }

// OptionsFor returns the options the agent uses on goos ("windows",
// "linux", "darwin", ...): Windows folds case and caps the block.
func OptionsFor(goos string) Options {
	o := Options{
		Private:     []string{"COURIER_AGENT_TOKEN", "COURIER_AGENT_TOKEN_FILE", "COURIER_AGENT_*"},
		BudgetBytes: DefaultBudgetBytes,
	}
	if goos == "windows" {
		o.FoldCase, o.BlockLimit = true, WindowsBlockLimit
	}
	return o
}

// Validate reports whether o is usable.
func (o Options) Validate() error {
	if o.BudgetBytes < 0 {
		return fmt.Errorf("%w: BudgetBytes is negative", ErrOptions)
	}
	if o.BlockLimit < 0 {
		return fmt.Errorf("%w: BlockLimit is negative", ErrOptions)
	}
	for _, p := range o.Private {
		if p == "" || p == "*" {
			return fmt.Errorf("%w: private entry %q would match every name", ErrOptions, p)
		}
	}
	return nil
}

// Layers are the inputs of a merge, lowest precedence first.
type Layers struct {
	// Base is an environment in "NAME=value" form, e.g. os.Environ().
	// Entries without '=' are dropped (os/exec does the same).
	Base []string
	// Template, Secrets and Session are name → value maps.
	Template, Secrets, Session map[string]string
}

// Result is a merged environment.
type Result struct {
	// Env is ready for exec.Cmd.Env: one entry per name (under the folding
	// rule), sorted by name.
	Env []string
	// Bytes is the size of the environment block: len("NAME=value")+1 for
	// each entry.
	Bytes int
	// OverBudget is true when Bytes exceeds the budget.
	OverBudget bool
	// Warnings describe shadowed session variables and an exceeded budget.
	// They name variables and sizes, never values.
	Warnings []string
	// layers[i] is the layer that set Env[i]; see Effective.
	layers []string
}

// String never includes values.
func (p *Prepared) String() string {
	return fmt.Sprintf("Prepared{vars=%d bytes=%d}", len(p.env), p.bytes)
}

// String never includes values (env secrets are among them).
func (r Result) String() string {
	return fmt.Sprintf("Result{vars=%d bytes=%d over_budget=%t warnings=%d}", len(r.Env), r.Bytes, r.OverBudget, len(r.Warnings))
}

// String never includes values.
func (l Layers) String() string {
	return fmt.Sprintf("Layers{base=%d template=%d secrets=%d session=%d}", len(l.Base), len(l.Template), len(l.Secrets), len(l.Session))
}

type entry struct {
	key, name, value, layer string
}

// Merge merges l under o. It is deterministic: the same input gives the same
// Result, whatever the iteration order of the maps. It is Prepare followed
// by With(l.Session); callers that start many processes from the same
// layers should keep the Prepared.
func Merge(o Options, l Layers) (Result, error) {
	session := l.Session
	l.Session = nil
	p, err := Prepare(o, l)
	if err != nil {
		return Result{}, err
	}
	return p.With(session)
}

// Prepared is the merge of the base, template and secret layers, sorted and
// ready; With adds a session layer for one process. The agent prepares once
// per apply (the layers change only then) and pays only for the session
// layer per process. A Prepared is read-only, so safe for concurrent use.
type Prepared struct {
	o      Options
	budget int
	key    func(string) string
	// keys (folded names), env ("NAME=value") and layers are parallel
	// slices sorted by key.
	keys, env, layers  []string
	bytes, secretBytes int
}

// Prepare merges the base, template and secret layers of l; l.Session is
// ignored (pass it to With).
func Prepare(o Options, l Layers) (*Prepared, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &Prepared{o: o, budget: o.BudgetBytes, key: func(name string) string { return name }}
	if p.budget == 0 {
		p.budget = DefaultBudgetBytes
	}
	if o.FoldCase {
		p.key = strings.ToUpper
	}
	n := len(l.Base) + len(l.Template) + len(l.Secrets)
	// entries holds the variables in first-set order; index maps a
	// (possibly case-folded) name to its slot.
	entries := make([]entry, 0, n)
	index := make(map[string]int, n)
	set := func(name, value, layer string) error {
		if err := check(name, value, layer); err != nil {
			return err
		}
		k := p.key(name)
		if i, ok := index[k]; ok {
			entries[i].value, entries[i].layer = value, layer
			return nil
		}
		index[k] = len(entries)
		entries = append(entries, entry{key: k, name: name, value: value, layer: layer})
		return nil
	}
	for _, kv := range l.Base {
		name, value, ok := strings.Cut(kv, "=")
		// Windows keeps per-drive working directories in entries such as
		// "=C:=C:\\"; they have no name to merge, so they are dropped.
		if !ok || name == "" || isPrivate(o, name) {
			continue
		}
		if err := set(name, value, LayerBase); err != nil {
			return nil, err
		}
	}
	for _, layer := range []struct {
		name string
		m    map[string]string
	}{{LayerTemplate, l.Template}, {LayerSecret, l.Secrets}} {
		if err := setLayer(o.FoldCase, layer.name, layer.m, set); err != nil {
			return nil, err
		}
	}

	// Sort an index, not the entries: swapping 4-byte ints is much cheaper
	// than swapping four-string structs (each swap is GC write barriers).
	order := make([]int32, len(entries))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(entries[a].key, entries[b].key) })
	for _, e := range entries {
		size := len(e.name) + len(e.value) + 2
		p.bytes += size
		if e.layer == LayerSecret {
			p.secretBytes += size
		}
	}
	// Every "NAME=value" is a slice of one string: one allocation for the
	// whole environment instead of one per variable.
	var b strings.Builder
	b.Grow(p.bytes)
	for _, i := range order {
		e := &entries[i]
		b.WriteString(e.name)
		b.WriteByte('=')
		b.WriteString(e.value)
	}
	all, off := b.String(), 0
	p.keys, p.env, p.layers = make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries))
	for i, j := range order {
		e := &entries[j]
		n := len(e.name) + 1 + len(e.value)
		p.keys[i], p.env[i], p.layers[i] = e.key, all[off:off+n], e.layer
		off += n
	}
	return p, nil
}

// With returns the environment of one process: the prepared layers with
// session over them. Session variables win over secrets (see the package
// doc), with a warning naming the variable.
func (p *Prepared) With(session map[string]string) (Result, error) {
	n := len(p.env)
	res := Result{Env: make([]string, n, n+len(session)), layers: make([]string, n, n+len(session)), Bytes: p.bytes}
	copy(res.Env, p.env)
	copy(res.layers, p.layers)
	keys, copied := p.keys, false
	secretBytes := p.secretBytes
	names := make([]string, 0, len(session))
	for name := range session {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		value := session[name]
		if err := check(name, value, LayerSession); err != nil {
			return Result{}, err
		}
		k := p.key(name)
		i, found := slices.BinarySearch(keys, k)
		if !found {
			if !copied {
				keys, copied = slices.Clone(keys), true
			}
			keys = slices.Insert(keys, i, k)
			res.Env = slices.Insert(res.Env, i, name+"="+value)
			res.layers = slices.Insert(res.layers, i, LayerSession)
			res.Bytes += len(name) + len(value) + 2
			continue
		}
		// Keep the first spelling of the name (Windows does).
		oldName, oldValue, _ := strings.Cut(res.Env[i], "=")
		oldSize := len(oldName) + len(oldValue) + 2
		if res.layers[i] == LayerSecret {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"secret env %s is shadowed by the session's own variable %s", oldName, name))
			secretBytes -= oldSize
		}
		res.Env[i], res.layers[i] = oldName+"="+value, LayerSession
		res.Bytes += len(oldName) + len(value) + 2 - oldSize
	}
	if res.Bytes > p.budget {
		res.OverBudget = true
		msg := fmt.Sprintf("environment is %d bytes, %d over the %d-byte budget", res.Bytes, res.Bytes-p.budget, p.budget)
		if res.Bytes-secretBytes <= p.budget {
			msg += fmt.Sprintf("; env secrets (%d bytes) pushed it over", secretBytes)
		}
		res.Warnings = append(res.Warnings, msg)
	}
	if p.o.BlockLimit > 0 {
		if err := checkBlock(res, p.o.BlockLimit); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// Effective maps each variable of r.Env to the layer that set it, for
// debugging. It holds no values.
func (r Result) Effective() map[string]string {
	m := make(map[string]string, len(r.Env))
	for i, kv := range r.Env {
		name, _, _ := strings.Cut(kv, "=")
		m[name] = r.layers[i]
	}
	return m
}

func check(name, value, layer string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name in the %s layer", ErrInvalid, layer)
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("%w: name %q in the %s layer contains '=' or NUL", ErrInvalid, strings.ReplaceAll(name, "\x00", `\0`), layer)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: value of %s in the %s layer contains a NUL byte", ErrInvalid, name, layer)
	}
	return nil
}

func isPrivate(o Options, name string) bool {
	for _, p := range o.Private {
		prefix, isPrefix := strings.CutSuffix(p, "*")
		if o.FoldCase {
			name, prefix, p = strings.ToUpper(name), strings.ToUpper(prefix), strings.ToUpper(p)
		}
		if (isPrefix && strings.HasPrefix(name, prefix)) || name == p {
			return true
		}
	}
	return false
}

// setLayer sets every variable of m. Without case folding the names of one
// map are distinct, so iteration order cannot change the outcome; with it,
// names differing only in case collide, so they are set in sorted order to
// resolve the same way every time.
func setLayer(fold bool, layer string, m map[string]string, set func(name, value, layer string) error) error {
	if !fold {
		for name, value := range m {
			if err := set(name, value, layer); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range sortedKeys(m) {
		if err := set(name, m[name], layer); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
