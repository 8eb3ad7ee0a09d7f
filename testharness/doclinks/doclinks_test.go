// Package doclinks checks that the documentation points only at files the repository holds:
// every relative link in a Markdown file, and every *.md path named in Markdown text or in a Go
// comment, must resolve to a file or folder inside the repository that git tracks (or will: new
// files that are not ignored count). A clone has nothing else, so a link to a sibling checkout
// or a local note is a broken link.
package doclinks

import (
	"bufio"
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// [text](target) and ![alt](target "title"); text may hold a code span.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// a path ending in .md in prose, code spans or Go comments.
	mdPath = regexp.MustCompile(`/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.md\b`)
	// a URL in prose, left out before looking for paths.
	proseURL = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://\S*`)
	// a URL scheme (https:, mailto:, …): not a file.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// repo is what a clone of the repository holds: its tracked paths and the folders above them.
type repo struct {
	root  string
	paths map[string]bool // slash-separated, relative to root
}

func (r repo) has(rel string) bool { return r.paths[rel] }

// problems returns what is wrong with the references in one file (name is slash-separated and
// relative to the repository root). Markdown files are checked for links and for *.md paths
// in their text, Go files for *.md paths in comments; such a path may be relative to the file's
// folder or to the root.
func (r repo) problems(name string, content []byte) []string {
	var out []string
	dir := path.Dir(name)
	check := func(line int, target string, rootToo bool) {
		if target == "" || strings.HasPrefix(target, "#") || scheme.MatchString(target) {
			return
		}
		if i := strings.IndexAny(target, "#?"); i >= 0 {
			target = target[:i]
		}
		if t, err := url.PathUnescape(target); err == nil {
			target = t
		}
		if strings.HasPrefix(target, "/") {
			out = append(out, fmt.Sprintf("%s:%d: %s: absolute path; link files in the repository relatively", name, line, target))
			return
		}
		candidates := []string{path.Join(dir, target)}
		if rootToo {
			candidates = append(candidates, path.Clean(target))
		}
		for _, c := range candidates {
			if c != ".." && !strings.HasPrefix(c, "../") && r.has(strings.TrimSuffix(c, "/")) {
				return
			}
		}
		out = append(out, fmt.Sprintf("%s:%d: %s: not a file or folder of the repository", name, line, target))
	}
	if strings.HasSuffix(name, ".go") {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, content, parser.ParseComments)
		if err != nil {
			return append(out, fmt.Sprintf("%s: %v", name, err))
		}
		for _, g := range f.Comments {
			for _, c := range g.List {
				for i, line := range strings.Split(c.Text, "\n") {
					for _, m := range mdPath.FindAllString(proseURL.ReplaceAllString(line, " "), -1) {
						check(fset.Position(c.Pos()).Line+i, m, true)
					}
				}
			}
		}
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	fenced := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			check(n, m[1], false)
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			check(n, m[1], false)
			continue
		}
		prose := proseURL.ReplaceAllString(inlineLink.ReplaceAllString(line, " "), " ")
		for _, m := range mdPath.FindAllString(prose, -1) {
			check(n, m, true)
		}
	}
	return out
}

func TestProblems(t *testing.T) {
	r := repo{paths: map[string]bool{
		"README.md": true, "agent": true, "agent/spool": true, "agent/spool/doc.go": true,
		"agent/spool/GUARANTEES.md": true, "protocol": true, "protocol/doc.go": true,
	}}
	tests := []struct {
		name, file, text string
		bad              int
	}{
		{"relative link", "README.md", "see [`doc`](agent/spool/doc.go) and [g](agent/spool/GUARANTEES.md#caveats)", 0},
		{"link up and over", "agent/spool/GUARANTEES.md", "[wire](../../protocol/doc.go), [here](doc.go), [dir](../spool/)", 0},
		{"urls and anchors", "README.md", "[a](https://example.org/x.md) [b](#top) [c](mailto:x@y)", 0},
		{"missing file", "README.md", "[x](agent/spool/nope.go)", 1},
		{"outside the repository", "README.md", "[x](../shared/GUARANTEES.md)", 1},
		{"absolute path", "README.md", "[x](/work/shared/README.md)", 1},
		{"reference definition", "README.md", "[x]: agent/missing.md", 1},
		{"code span naming a sibling checkout", "README.md", "in `../shared/GUARANTEES.md`", 1},
		{"code span naming a repo file", "agent/spool/GUARANTEES.md", "`agent/spool/doc.go` and `README.md`", 0},
		{"prose naming a sibling checkout", "README.md", "Sources (see /work/shared/pos-samples/README.md):", 1},
		{"prose naming a repo file", "agent/spool/GUARANTEES.md", "see GUARANTEES.md and README.md; https://example.org/a/b.md", 0},
		{"link text naming a file is checked once", "README.md", "[`agent/missing.md`](agent/missing.md)", 1},
		{"fenced code is not checked", "README.md", "```\n[x](nowhere.go)\n```\n", 0},
		{"go comment, root-relative", "agent/spool/x_test.go", "// the promise (agent/spool/GUARANTEES.md)\npackage e2e", 0},
		{"go comment, outside", "agent/spool/x_test.go", "// Package e2e checks\n// the promise (../../../shared/GUARANTEES.md)\npackage e2e", 1},
		{"go comment, unknown note", "agent/spool/x.go", "package spool\n\n/* the table in RESEARCH.md */\nvar x = 1", 1},
		{"go comment deep in a file", "agent/spool/x.go", "package spool\n\nfunc f() {\n\t// see ../shared/notes.md\n}\n", 1},
		{"go string literal is not a reference", "agent/spool/x.go", "package spool\n\nvar x = \"nowhere.md\"", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.problems(tc.file, []byte(tc.text)); len(got) != tc.bad {
				t.Errorf("problems(%q) = %q, want %d", tc.text, got, tc.bad)
			}
		})
	}
}

// TestRepositoryDocLinks checks every tracked Markdown and Go file except third-party licence
// texts, which are kept verbatim and name files of their own projects.
func TestRepositoryDocLinks(t *testing.T) {
	r := loadRepo(t)
	var files, bad int
	for _, p := range slices.Sorted(maps.Keys(r.paths)) {
		if !strings.HasSuffix(p, ".md") && !strings.HasSuffix(p, ".go") || strings.HasPrefix(path.Base(p), "LICENSE") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, msg := range r.problems(p, b) {
			t.Error(msg)
			bad++
		}
	}
	if files < 10 {
		t.Fatalf("only %d files checked under %s: wrong root?", files, r.root)
	}
	t.Logf("%d files checked, %d broken references", files, bad)
}

// loadRepo lists the tracked files with git, or, without git (an exported tarball), every file
// under the root except hidden folders.
func loadRepo(t *testing.T) repo {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	r := repo{root: root, paths: map[string]bool{}}
	add := func(p string) {
		for ; p != "." && p != "/" && !r.paths[p]; p = path.Dir(p) {
			r.paths[p] = true
		}
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		for p := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
				add(p) // skip files deleted in the work tree but not yet in the index
			}
		}
		return r
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			add(filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
