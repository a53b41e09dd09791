package inject

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/filewriter"
)

// benchSecrets is 50 file secrets totalling 200 KiB (4 KiB each), spread
// over 5 directories, with the value changed by iteration i so every run
// really writes.
func benchSecrets(i int) []Secret {
	out := make([]Secret, 50)
	for k := range out {
		v := fmt.Sprintf("%08d", i) + strings.Repeat("x", 4096-8)
		out[k] = Secret{Name: fmt.Sprintf("s%02d", k), Value: v,
			FilePath: fmt.Sprintf("~/dir%d/secret-%02d", k%5, k), UpdatedAt: time.Unix(int64(k), 0)}
	}
	return out
}

// BenchmarkPlanApply measures NewPlan+Apply of 50 secrets / 200 KiB on the
// real filesystem. Compare with BenchmarkSerialBaseline.
func BenchmarkPlanApply(b *testing.B) {
	home := b.TempDir()
	w, err := filewriter.New(filewriter.Config{Home: home})
	if err != nil {
		b.Fatal(err)
	}
	m := Manifest{Home: home}
	i := 0
	for b.Loop() {
		i++
		p, err := NewPlan(m, benchSecrets(i))
		if err != nil {
			b.Fatal(err)
		}
		rep := Apply(context.Background(), p, w)
		if rep.Outcomes[0].Outcome != "written" {
			b.Fatalf("outcome %+v", rep.Outcomes[0])
		}
	}
}

// BenchmarkSerialBaseline is the raw cost of the same writes done one after
// another: temp write + fsync + rename + directory fsync per file.
func BenchmarkSerialBaseline(b *testing.B) {
	home := b.TempDir()
	for d := range 5 {
		_ = os.MkdirAll(filepath.Join(home, fmt.Sprintf("dir%d", d)), 0o700)
	}
	i := 0
	for b.Loop() {
		i++
		for _, s := range benchSecrets(i) {
			p := filepath.Join(home, strings.TrimPrefix(s.FilePath, "~/"))
			if err := rawWrite(p, []byte(s.Value)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func rawWrite(p string, data []byte) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// BenchmarkApplyRatio runs Plan+Apply and the serial baseline on the same
// files in alternation and reports apply time / baseline time as "ratio"
// (goal <= 0.5), so machine noise hits both sides alike.
func BenchmarkApplyRatio(b *testing.B) {
	home := b.TempDir()
	w, err := filewriter.New(filewriter.Config{Home: home})
	if err != nil {
		b.Fatal(err)
	}
	m := Manifest{Home: home}
	var applyDur, serialDur time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		p, _ := NewPlan(m, benchSecrets(i))
		Apply(context.Background(), p, w)
		applyDur += time.Since(start)
		i++
		start = time.Now()
		for _, s := range benchSecrets(i) {
			if err := rawWrite(filepath.Join(home, strings.TrimPrefix(s.FilePath, "~/")), []byte(s.Value)); err != nil {
				b.Fatal(err)
			}
		}
		serialDur += time.Since(start)
	}
	b.ReportMetric(float64(applyDur)/float64(serialDur), "ratio")
	b.ReportMetric(float64(applyDur.Microseconds())/float64(b.N), "apply-µs/op")
	b.ReportMetric(float64(serialDur.Microseconds())/float64(b.N), "serial-µs/op")
}
