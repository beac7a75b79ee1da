package conformance

import (
	"sort"
	"strings"
	"testing"
)

const sampleTAP = `TAP version 13
ok 1 - has expected hostname
  ---
  {
    "actual": "x"
  }
  ...
not ok 2 - expected bounding capability CAP_MKNOD set
ok 3 # SKIP linux.devices is not set
ok 4 - check hostname
ok 5 - check hostname
1..5
`

func TestParseTAP(t *testing.T) {
	got := ParseTAP("prog", sampleTAP, 0)
	want := map[Key]Result{
		{"prog", "has expected hostname", 1}:                      Pass,
		{"prog", "expected bounding capability CAP_MKNOD set", 1}: Fail,
		{"prog", "linux.devices is not set", 1}:                   Skip,
		{"prog", "check hostname", 1}:                             Pass,
		{"prog", "check hostname", 2}:                             Pass,
		{"prog", WholeRun, 1}:                                     Pass,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, r := range want {
		if got[k] != r {
			t.Errorf("%v: got %q, want %q", k, got[k], r)
		}
	}
	if p, f, s := Counts(got); p != 4 || f != 1 || s != 1 {
		t.Errorf("counts %d/%d/%d, want 4/1/1", p, f, s)
	}
}

func TestParseTAPWholeRun(t *testing.T) {
	for _, c := range []struct {
		name string
		out  string
		code int
		want Result
	}{
		{"exit status", "TAP version 13\n1..0\n", 1, Fail},
		{"error outside any test", "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n  ...\n1..0\n", 0, Fail},
		{"error inside a test", "TAP version 13\nnot ok 1 - x\n  ---\n  {\n    \"error\": \"e\"\n  }\n  ...\n1..1\n", 0, Pass},
		{"nothing to report", "TAP version 13\n1..0\n", 0, Pass},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseTAP("p", c.out, c.code)[Key{"p", WholeRun, 1}]; got != c.want {
				t.Fatalf("whole run %q, want %q", got, c.want)
			}
		})
	}
}

func TestRegressions(t *testing.T) {
	runc := map[Key]Result{
		{"a", "x", 1}: Pass, {"a", "y", 1}: Pass, {"a", "z", 1}: Fail, {"a", "gone", 1}: Pass, {"a", "s", 1}: Pass, {"a", WholeRun, 1}: Pass,
		// A program runc fails as a whole: what it printed on the way
		// does not count unless runsc prints it too.
		{"b", "by the way", 1}: Pass, {"b", "both", 1}: Pass, {"b", WholeRun, 1}: Fail,
		// runsc failing such a program too: what it did not print counts.
		{"c", "printed by runc", 1}: Pass, {"c", WholeRun, 1}: Fail,
	}
	runsc := map[Key]Result{
		{"a", "x", 1}: Pass, {"a", "y", 1}: Fail, {"a", "z", 1}: Fail, {"a", "s", 1}: Skip, {"a", "new", 1}: Fail, {"a", WholeRun, 1}: Pass,
		{"b", "both", 1}: Fail, {"b", WholeRun, 1}: Pass,
		{"c", WholeRun, 1}: Fail,
	}
	var got []string
	for _, k := range Regressions(runc, runsc) {
		got = append(got, k.Program+":"+k.Test)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "a:gone,a:s,a:y,b:both,c:printed by runc" {
		t.Fatalf("regressions %v, want [a:gone a:s a:y b:both c:printed by runc]", got)
	}
}

func TestParseDifferences(t *testing.T) {
	d, err := ParseDifferences("# comment\n\nprog | * | why\nprog2 | some test | because | with a bar\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[1].Reason != "because | with a bar" {
		t.Fatalf("parsed %+v", d)
	}
	if !d[0].Matches(Key{"prog", "anything", 3}) || d[0].Matches(Key{"other", "anything", 1}) {
		t.Fatal("wildcard match wrong")
	}
	if !d[1].Matches(Key{"prog2", "some test", 1}) || d[1].Matches(Key{"prog2", "other test", 1}) || d[1].Matches(Key{"prog2", "some test too", 1}) {
		t.Fatal("exact match wrong")
	}
	p, err := ParseDifferences(`prog | "/dev/x" (a) * | why`)
	if err != nil || !p[0].Matches(Key{"prog", `"/dev/x" (a) has the expected type`, 1}) || p[0].Matches(Key{"prog", `has a file at "/dev/x" (a)`, 1}) {
		t.Fatalf("prefix match wrong: %+v %v", p, err)
	}
	for _, bad := range []string{"only | two", "p |  | reason", " | t | r"} {
		if _, err := ParseDifferences(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming line 1", bad, err)
		}
	}
}

func TestDifferencesFileParses(t *testing.T) {
	if _, err := ParseDifferences(differencesFile); err != nil {
		t.Fatal(err)
	}
}
