package envmerge

import (
	"errors"
	"strings"
	"testing"
)

// The Windows rules are options, so they are tested here on any OS.

func TestOptionsForWindows(t *testing.T) {
	w, l := OptionsFor("windows"), OptionsFor("linux")
	if !w.FoldCase || w.BlockLimit != WindowsBlockLimit {
		t.Errorf("windows options = %+v, want folding and a %d-unit block", w, WindowsBlockLimit)
	}
	if l.FoldCase || l.BlockLimit != 0 || OptionsFor("darwin").FoldCase {
		t.Errorf("linux options = %+v, want exact names and no block cap", l)
	}
}

func TestWindowsPathIsOneVariable(t *testing.T) {
	res, err := Merge(OptionsFor("windows"), Layers{
		Base:     []string{"Path=C:\\Windows", "SystemRoot=C:\\Windows", "=C:=C:\\"},
		Template: map[string]string{"PATH": "C:\\tools", "systemroot": "D:\\Win"},
		Secrets:  map[string]string{"Api_Key": "canary-1"},
		Session:  map[string]string{"API_KEY": "session"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Api_Key=session", "Path=C:\\tools", "SystemRoot=D:\\Win"}
	if strings.Join(res.Env, "|") != strings.Join(want, "|") {
		t.Errorf("env = %q, want %q (first spelling kept, later layer's value)", res.Env, want)
	}
}

func TestBlockUnits(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		want int
	}{
		{"empty", nil, 1},
		{"ascii", []string{"A=b"}, 5},
		{"bmp", []string{"A=é"}, 5},             // é is one unit, two bytes
		{"astral", []string{"A=\U0001F600"}, 6}, // a surrogate pair
	} {
		if got := BlockUnits(tt.env); got != tt.want {
			t.Errorf("%s: BlockUnits = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestWindowsBlockLimit(t *testing.T) {
	o := OptionsFor("windows")
	o.BlockLimit = 100
	base := []string{"SystemRoot=C:\\Windows"} // 22 units
	canary := "canary-" + strings.Repeat("v", 40)
	t.Run("fits", func(t *testing.T) {
		if _, err := Merge(o, Layers{Base: base, Secrets: map[string]string{"SMALL": "x"}}); err != nil {
			t.Fatalf("small env refused: %v", err)
		}
	})
	t.Run("secrets over", func(t *testing.T) {
		_, err := Merge(o, Layers{Base: base, Secrets: map[string]string{
			"BIG": canary, "MID": canary[:30], "TINY": "x"}})
		if !errors.Is(err, ErrBlockTooLarge) {
			t.Fatalf("err = %v, want ErrBlockTooLarge", err)
		}
		msg := err.Error()
		for _, want := range []string{"BIG (52 units)", "over the limit of 100", "file secrets"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "TINY") || strings.Contains(msg, "canary") {
			t.Errorf("error %q names more than what did not fit, or a value", msg)
		}
	})
	t.Run("template alone over", func(t *testing.T) {
		_, err := Merge(o, Layers{Base: base, Template: map[string]string{"T": strings.Repeat("t", 200)}})
		if !errors.Is(err, ErrBlockTooLarge) || !strings.Contains(err.Error(), "template env alone") {
			t.Fatalf("err = %v, want the template named as too large", err)
		}
	})
	t.Run("linux has no cap", func(t *testing.T) {
		if _, err := Merge(OptionsFor("linux"), Layers{Secrets: map[string]string{"BIG": strings.Repeat("v", 40000)}}); err != nil {
			t.Fatalf("linux refused a large env: %v", err)
		}
	})
	t.Run("negative", func(t *testing.T) {
		if err := (Options{BlockLimit: -1}).Validate(); !errors.Is(err, ErrOptions) {
			t.Errorf("negative BlockLimit: %v", err)
		}
	})
}
