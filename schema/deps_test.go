package schema

import (
	"go/build"
	"strings"
	"testing"
)

// schema is a leaf: the standard library and the JSON Schema validator
// only, so that every other package can import it.
func TestImportsOnlyStdlibAndJSONSchema(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/santhosh-tekuri/jsonschema/v6" {
			t.Errorf("schema imports %s; it may import only the standard library and github.com/santhosh-tekuri/jsonschema/v6", imp)
		}
	}
}
