// Package conformance runs the OCI runtime-tools validation suite
// (github.com/opencontainers/runtime-tools at a pinned pseudo-version)
// against runc and runsc in the same run, prints both counts, and fails
// when runsc fails a test that runc passes, but for the deliberate
// differences listed, each with its reason, in differences.txt.
package conformance

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Result is the outcome of one test.
type Result string

// The outcomes of a test.
const (
	Pass Result = "pass"
	Fail Result = "fail"
	Skip Result = "skip"
)

// Key names one test: the validation program, the test's description and,
// for a description the program prints more than once, which occurrence.
type Key struct {
	Program, Test string
	N             int
}

// String implements fmt.Stringer.
func (k Key) String() string {
	if k.N > 1 {
		return fmt.Sprintf("%s: %s (#%d)", k.Program, k.Test, k.N)
	}
	return fmt.Sprintf("%s: %s", k.Program, k.Test)
}

// WholeRun is the test description standing for a validation program's
// run as a whole: it fails when the program exits non-zero or reports an
// error outside any test (as the hook and *_fail programs do).
const WholeRun = "(whole run)"

// tapLine matches a TAP test line: "ok 3 - desc", "not ok 4 - desc",
// "ok 5 # SKIP reason".
var tapLine = regexp.MustCompile(`^(not ok|ok) \d+(?: - (.*?))?(?:\s*# (?i:skip)(.*))?$`)

// ParseTAP returns the results of one program's TAP output; exitCode is
// the program's exit status.
func ParseTAP(program, out string, exitCode int) map[Key]Result {
	res := map[Key]Result{}
	seen := map[string]int{}
	tests := 0
	topLevelError := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		m := tapLine.FindStringSubmatch(line)
		if m == nil {
			if tests == 0 && strings.HasPrefix(strings.TrimSpace(line), `"error":`) {
				topLevelError = true
			}
			continue
		}
		tests++
		desc := strings.TrimSpace(m[2])
		r := Pass
		switch {
		case strings.Contains(strings.ToLower(line), "# skip"):
			r = Skip
			if desc == "" {
				desc = strings.TrimSpace(m[3])
			}
		case m[1] == "not ok":
			r = Fail
		}
		seen[desc]++
		res[Key{program, desc, seen[desc]}] = r
	}
	whole := Pass
	if exitCode != 0 || (tests == 0 && topLevelError) {
		whole = Fail
	}
	res[Key{program, WholeRun, 1}] = whole
	return res
}

// Counts tallies results.
func Counts(res map[Key]Result) (pass, fail, skip int) {
	for _, r := range res {
		switch r {
		case Pass:
			pass++
		case Fail:
			fail++
		case Skip:
			skip++
		}
	}
	return pass, fail, skip
}

// Regressions returns the tests runc passes that runsc fails, skips or
// does not print (a check that depends on an earlier one is printed only
// once that one passed, and runtimetest names a mount "found" where it
// would say "found in order"). Not printing is excused only where runc
// failed the program as a whole and runsc passed it: the tests runc
// printed on its way to failing a program meant to fail (an unknown
// capability, say) are no bar for a runtime that refuses it up front.
func Regressions(runc, runsc map[Key]Result) []Key {
	var out []Key
	for k, r := range runc {
		if r != Pass {
			continue
		}
		whole := Key{k.Program, WholeRun, 1}
		got, ok := runsc[k]
		if !ok && runc[whole] != Pass && runsc[whole] == Pass {
			continue
		}
		if got != Pass {
			out = append(out, k)
		}
	}
	return out
}

// Difference is one deliberate difference of runsc from runc.
type Difference struct {
	// Program is the validation program; Test the test's description,
	// or a prefix of descriptions followed by "*" ("*" alone: every
	// test of the program).
	Program, Test string
	// Reason says why runsc differs.
	Reason string
}

// Matches reports whether d covers test k: the same description, or
// one starting with what precedes a final "*".
func (d Difference) Matches(k Key) bool {
	if prefix, ok := strings.CutSuffix(d.Test, "*"); ok {
		return d.Program == k.Program && strings.HasPrefix(k.Test, prefix)
	}
	return d.Program == k.Program && d.Test == k.Test
}

// ParseDifferences reads the differences file: one difference per line,
// "program | test | reason" (a test ending in "*" stands for every test
// whose description starts with what precedes it); blank
// lines and lines starting with # are ignored.
func ParseDifferences(data string) ([]Difference, error) {
	var out []Difference
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"program | test | reason\"", i+1)
		}
		d := Difference{strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])}
		if d.Program == "" || d.Test == "" || d.Reason == "" {
			return nil, fmt.Errorf("line %d: program, test and reason must all be given", i+1)
		}
		out = append(out, d)
	}
	return out, nil
}
