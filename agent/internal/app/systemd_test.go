package app

import (
	"strings"
	"testing"
	"text/template"
)

// TestSystemdUnitRenders renders the unit the way kardianos/service does (its template
// functions) and checks the restart policy and the command line.
func TestSystemdUnitRenders(t *testing.T) {
	funcs := template.FuncMap{
		"Description": func() string { return "Lanebridge store agent" },
		"Path":        func() string { return "/opt/lanebridge/lanebridge-agent" },
		"Arguments":   func() []string { return []string{"run", "--config", "/etc/lanebridge/agent.yaml"} },
		"Name":        func() string { return "lanebridge-agent" },
		"cmd":         func(s string) string { return `"` + s + `"` },
		"cmdEscape":   func(s string) string { return s },
	}
	tm, err := template.New("unit").Funcs(funcs).Parse(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tm.Execute(&b, nil); err != nil {
		t.Fatal(err)
	}
	unit := b.String()
	for _, want := range []string{`ExecStart=/opt/lanebridge/lanebridge-agent "run" "--config" "/etc/lanebridge/agent.yaml"`, "Restart=always", "RestartSec=5s", "NoNewPrivileges=yes"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
}
