package kairoscope_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// No test reads a path outside the repository: a clone alone must pass its
// tests (there is no shared/ beside it). Every string literal in a
// _test.go file that starts with ../ must stay inside the repository from
// the test's package folder, where go test runs it. .ci/run also runs the
// suite from a copy with nothing beside it.
func TestTestsStayInsideTheRepository(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		depth := len(strings.Split(filepath.Dir(p), string(filepath.Separator)))
		if filepath.Dir(p) == "." {
			depth = 0
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !strings.HasPrefix(s, "../") {
				return true
			}
			parts := strings.Split(filepath.Clean(s), "/")
			up := 0
			for up < len(parts) && parts[up] == ".." {
				up++
			}
			if up > depth && up < len(parts) { // a path that names something out there
				t.Errorf("%s: %q leaves the repository (%d levels up from a folder %d deep): use data inside it (the embedded datasets, testdata/)",
					fset.Position(lit.Pos()), s, up, depth)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
