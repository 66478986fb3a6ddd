package kernels

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// generateArgs returns the arguments of gen.go's //go:generate nvcc line.
func generateArgs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "//go:generate nvcc "); ok {
			return strings.Fields(f)
		}
	}
	t.Fatal("gen.go has no //go:generate nvcc line")
	return nil
}

// TestPTXIsFresh runs gen.go's nvcc command into a temporary file and
// compares the result with the committed kernels.ptx byte for byte. nvcc's
// output is deterministic and does not name the input or output path (the
// header names only the compiler build), so no normalisation is needed; a
// different nvcc release differs in that header and, usually, in the code,
// and fails here: regenerate with the toolkit CI uses (make deps-gpu).
func TestPTXIsFresh(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Fatal("nvcc not found: cannot check that kernels.ptx matches kernels.cu; install the CUDA toolkit: make deps-gpu")
	}
	args := generateArgs(t)
	out := filepath.Join(t.TempDir(), "kernels.ptx")
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) || args[i+1] != "kernels.ptx" {
		t.Fatalf("gen.go's nvcc line %q does not write -o kernels.ptx", args)
	}
	args[i+1] = out
	cmd := exec.Command(nvcc, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nvcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("kernels.ptx")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
		line++
	}
	at := func(l []string) string {
		if line < len(l) {
			return l[line]
		}
		return "<end of file>"
	}
	t.Fatalf("kernels.ptx is stale: it is not what %s makes of kernels.cu now; run `go generate ./cuda/kernels` and commit kernels.ptx.\n"+
		"first difference at line %d:\n  committed: %q\n  nvcc now:  %q\ncommitted by: %s\nnvcc now:     %s",
		nvcc, line+1, at(wl), at(gl), release(string(want)), release(string(got)))
}

// release returns the "Cuda compilation tools" line of a PTX header.
func release(ptx string) string {
	for l := range strings.SplitSeq(ptx, "\n") {
		if strings.Contains(l, "Cuda compilation tools") {
			return strings.TrimSpace(strings.TrimPrefix(l, "//"))
		}
	}
	return "unknown nvcc"
}

var (
	entryRE    = regexp.MustCompile(`(?s)\.visible \.entry (\w+)\((.*?)\)`)
	ptxParamRE = regexp.MustCompile(`\.param \.(\w+) (\w+)_param_(\d+)`)
	globalRE   = regexp.MustCompile(`(?s)extern "C" __global__ void (\w+)\((.*?)\)`)
	cParamRE   = regexp.MustCompile(`^(const )?(float|int)\s*(\*)?\s*(\w+)$`)
)

// ptxEntries parses PTX into entry name → parameter kinds.
func ptxEntries(t *testing.T, ptx string) (names []string, kinds map[string][]Kind) {
	t.Helper()
	kinds = map[string][]Kind{}
	for _, m := range entryRE.FindAllStringSubmatch(ptx, -1) {
		name := m[1]
		names = append(names, name)
		var ks []Kind
		for i, p := range ptxParamRE.FindAllStringSubmatch(m[2], -1) {
			if p[2] != name || p[3] != strconv.Itoa(i) {
				t.Fatalf("PTX entry %s: unexpected parameter %q", name, p[0])
			}
			switch p[1] {
			case "u64":
				ks = append(ks, Ptr)
			case "u32":
				ks = append(ks, Int32)
			case "f32":
				ks = append(ks, Float32)
			default:
				t.Fatalf("PTX entry %s: parameter type .%s", name, p[1])
			}
		}
		kinds[name] = ks
	}
	return names, kinds
}

// Every name in Names is a .entry of the PTX and an extern "C" __global__
// function of the source, in the same order, and nothing else is.
func TestNamesArePTXEntriesAndKernels(t *testing.T) {
	ptxNames, _ := ptxEntries(t, PTX)
	var srcNames []string
	for _, m := range globalRE.FindAllStringSubmatch(Source, -1) {
		srcNames = append(srcNames, m[1])
	}
	if !slices.Equal(srcNames, Names) {
		t.Errorf("kernels.cu defines %v; Names lists %v", srcNames, Names)
	}
	if !slices.Equal(ptxNames, Names) {
		t.Errorf("kernels.ptx has entries %v; Names lists %v", ptxNames, Names)
	}
	if len(Names) != len(signatures) {
		t.Errorf("%d names, %d signatures", len(Names), len(signatures))
	}
}

// Signature agrees with the declaration in kernels.cu (names and kinds) and
// with the parameter types in the PTX.
func TestSignaturesMatchSourceAndPTX(t *testing.T) {
	_, ptxKinds := ptxEntries(t, PTX)
	decls := map[string]string{}
	for _, m := range globalRE.FindAllStringSubmatch(Source, -1) {
		decls[m[1]] = m[2]
	}
	for _, name := range Names {
		sig, ok := Signature(name)
		if !ok {
			t.Errorf("%s: no Signature", name)
			continue
		}
		var src []Param
		for p := range strings.SplitSeq(decls[name], ",") {
			m := cParamRE.FindStringSubmatch(strings.Join(strings.Fields(p), " "))
			if m == nil {
				t.Fatalf("%s: cannot read parameter %q", name, p)
			}
			k := Int32
			switch {
			case m[3] == "*":
				k = Ptr
			case m[2] == "float":
				k = Float32
			}
			src = append(src, Param{m[4], k})
		}
		if !slices.Equal(sig, src) {
			t.Errorf("%s: Signature %v, kernels.cu declares %v", name, sig, src)
		}
		var kinds []Kind
		for _, p := range sig {
			kinds = append(kinds, p.Kind)
		}
		if !slices.Equal(kinds, ptxKinds[name]) {
			t.Errorf("%s: Signature kinds %v, PTX %v", name, kinds, ptxKinds[name])
		}
	}
	if _, ok := Signature("no_such_kernel"); ok {
		t.Error("Signature of an unknown kernel")
	}
	s, _ := Signature("fill")
	s[0].Name = "changed"
	if s2, _ := Signature("fill"); s2[0].Name != "x" {
		t.Error("Signature shares its slice")
	}
}
