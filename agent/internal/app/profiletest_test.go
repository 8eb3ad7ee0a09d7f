package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfileTestModes runs `profile test` on the shipped Epson profile's golden stream in its
// three modes: the day summary, --explain with the rule of every line, and --json with one
// object per transaction and a summary object.
func TestProfileTestModes(t *testing.T) {
	sample := filepath.Join("..", "profile", "testdata", "epson-tm-escpos", "stream-all", "input.bin")
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := cmdProfile(append([]string{"test", "--profile", "epson-tm-escpos"}, args...), &out); err != nil {
			t.Fatalf("profile test %v: %v", args, err)
		}
		return out.String()
	}
	plain := run(sample)
	for _, want := range []string{"day: ", "  sale ", "  z_report ", "Z 57: gross 1845.20, net 1801.33", "decoder: 0 unknown commands"} {
		if !strings.Contains(plain, want) {
			t.Errorf("summary lacks %q:\n%s", want, plain)
		}
	}
	// --explain before the sample: a boolean flag does not take the next argument.
	explain := run("--explain", sample)
	for _, want := range []string{"fields.rules[", "(total)", "│ TOTAL", "device event", "cleaning (left out)"} {
		if !strings.Contains(explain, want) {
			t.Errorf("--explain lacks %q:\n%s", want, explain)
		}
	}
	js := run(sample, "--json")
	sc := bufio.NewScanner(strings.NewReader(js))
	sc.Buffer(nil, 1<<20)
	statuses := map[string]int{}
	var summary bool
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("--json line is not JSON: %v: %s", err, sc.Text())
		}
		if _, ok := obj["summary"]; ok {
			summary = true
			continue
		}
		var tr testResult
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			t.Fatal(err)
		}
		statuses[tr.Status]++
		if tr.Status != statusQuarantined && tr.Record == nil {
			t.Errorf("%s result without a record: %s", tr.Status, sc.Text())
		}
		if tr.Reasons == nil || tr.Unmatched == nil {
			t.Errorf("reasons and unmatched must be lists: %s", sc.Text())
		}
	}
	if !summary || statuses[statusParsed] == 0 {
		t.Errorf("--json: statuses %v, summary %v:\n%s", statuses, summary, js)
	}
}

// TestProfileDraftCommand drafts from the Epson golden stream and tests the sample with the
// draft: it loads, and the output names what it guessed.
func TestProfileDraftCommand(t *testing.T) {
	sample := filepath.Join("..", "profile", "testdata", "epson-tm-escpos", "stream-all", "input.bin")
	var out bytes.Buffer
	if err := cmdProfile([]string{"draft", sample, "--dialect", "escpos"}, &out); err != nil {
		t.Fatalf("profile draft: %v", err)
	}
	for _, want := range []string{"name: 'draft'", "# On its own sample:", "type: total", "event: cut"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("draft lacks %q:\n%s", want, out.String())
		}
	}
	path := filepath.Join(t.TempDir(), "draft.yaml")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var res bytes.Buffer
	if err := cmdProfile([]string{"test", "--profile", path, sample}, &res); err != nil {
		t.Fatalf("profile test with the draft: %v", err)
	}
	if !strings.Contains(res.String(), "day: ") {
		t.Errorf("profile test with the draft:\n%s", res.String())
	}
	if err := cmdProfile([]string{"draft", sample, "--dialect", "morse"}, &out); err == nil || !strings.Contains(err.Error(), "dialect") {
		t.Errorf("draft with a bad dialect: %v", err)
	}
}
