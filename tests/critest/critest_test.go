// Package critest runs critest, the CRI validation suite of
// sigs.k8s.io/cri-tools v1.37.0, against a private containerd 1.6
// (Debian's) CRI plugin, once with the runtime handler runc
// (io.containerd.runc.v2, the reference) and once with runsc
// (io.containerd.runsc.v1, bin/containerd-shim-runsc-v1 with
// $RUNSC_BINARY), in the same run. It prints both counts and fails if
// runsc fails a spec that runc passes, but for the known gaps (see gaps),
// each with its reason, which it reports.
//
// critest is built once per version (`go test -c` of cri-tools' own module
// from the module proxy) and cached under $TMPDIR/runsc-critest-cache.
// containerd, a registry (Debian's docker-registry) and critest run in a
// network namespace of the test's own (loopback only); containerd pulls
// critest's images (registry.k8s.io, k8s.gcr.io, gcr.io) from that
// registry, into which the test pushes images it builds from a busybox
// root file system (scripts/mkrootfs.sh) with skopeo. Specs that need what
// this cannot provide are skipped by name, for both handlers, with the
// reason (see skips).
//
// It needs root, $RUNSC_BINARY (with containerd-shim-runsc-v1 next to
// it), containerd, runc, docker-registry, skopeo, nsenter/unshare and the
// CNI plugins in /usr/lib/cni; otherwise it skips with a message.
// CRITEST_FOCUS (a Ginkgo regexp) restricts the specs, for debugging;
// CRITEST_KEEP=1 keeps the logs (kept anyway on failure).
package critest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// skip is a spec critest cannot pass here with any runtime: pattern
// matches its full text (container texts and leaf text, space-joined).
type skip struct {
	pattern, reason string
}

// skips are the specs skipped for both handlers.
var skips = []skip{
	{`Image Manager public image with digest should be pulled and removed`,
		"pulls gcr.io/k8s-staging-cri-tools/test-image-digest by a fixed upstream manifest digest, which a locally built image cannot have"},
	{`Networking runtime should support networking runtime should support port mapping with`,
		"needs the nginx web server image and a pod network with host ports (CNI bridge/portmap); the pods here have loopback only"},
	{`Streaming runtime should support streaming interfaces runtime should support portforward`,
		"needs the nginx web server images (e2e-test-images/nginx, hostnet-nginx) from public registries"},
	{`Multiple Containers \[Conformance\] when running multiple containers in a pod`,
		"every spec of the group starts the e2e-test-images/httpd image (from a public registry) in its BeforeEach"},
	{`Security Context NamespaceOption runtime should support (HostPID|ContainerPID|PodPID)`,
		"runs the e2e-test-images/nginx image (pidof nginx) from a public registry"},
	{`Security Context NoNewPrivs`,
		"needs the e2e-test-images/nonewprivs image (a setuid test binary) from a public registry"},
}

// gap is a spec runsc fails while runc passes, for a stated reason: it
// does not fail the test, but the day runsc passes it the test fails
// until the gap is removed, so that the list only
// shrinks. pattern matches the spec's full text.
type gap struct {
	pattern, reason string
}

// gaps are each candidate handler's known gaps against runc in critest,
// each with its reason. runsc in its default set-up (each pod in a user
// namespace of its own) has the gaps that a user namespace brings with
// containerd 1.6; runsc-host-userns (runsc.toml: userns = "host") runs
// the same binary without it and has none, which shows that these are
// the only ones.
var gaps = map[string][]gap{
	"runsc": {
		{`mount with 'rshared' should support propagation from host to container and vice versa`,
			"the host's bind of a root-only (0700) directory propagates into the bidirectional volume as the host's mount, not idmapped through the pod's user namespace (the kernel copies the source's idmapping): the pod's root, an unprivileged host uid, may not read it"},
	},
}

// knownGap returns handler h's gap for the spec named name, if any.
func knownGap(h, name string) (gap, bool) {
	for _, g := range gaps[h] {
		if regexp.MustCompile(g.pattern).MatchString(name) {
			return g, true
		}
	}
	return gap{}, false
}

// sanity are specs that the reference handler must pass, or the harness
// (images, registry, containerd set-up) is broken.
var sanity = []string{
	"[k8s.io] PodSandbox runtime should support basic operations on PodSandbox runtime should support running PodSandbox [Conformance]",
	"[k8s.io] Container runtime should support basic operations on container runtime should support execSync [Conformance]",
	"[k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]",
}

// handlers are the runtime handlers compared; the first is the
// reference, each other one is compared with it.
var handlers = []string{"runc", "runsc", "runsc-host-userns"}

// spec is one spec's outcome.
type spec struct {
	state   string // passed, failed, skipped, panicked, timedout, ...
	message string
	runTime time.Duration
}

func TestCritest(t *testing.T) {
	runsc := os.Getenv("RUNSC_BINARY")
	if os.Geteuid() != 0 {
		t.Skip("needs root (a private containerd with CRI): run `make test` as root")
	}
	if runsc == "" {
		t.Skip("RUNSC_BINARY is not set (make integration sets it)")
	}
	runsc, err := filepath.Abs(runsc)
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(filepath.Dir(runsc), "containerd-shim-runsc-v1")
	if _, err := os.Stat(shim); err != nil {
		t.Skipf("no containerd shim next to $RUNSC_BINARY (%v): `make build` builds both", err)
	}
	missing := e2e.Missing("containerd", "ctr", "containerd-shim-runc-v2", "runc", "docker-registry", "skopeo", "unshare", "nsenter")
	for _, p := range []string{"loopback", "bridge", "host-local", "portmap"} {
		if _, err := os.Stat("/usr/lib/cni/" + p); err != nil {
			missing = append(missing, "/usr/lib/cni/"+p+" (containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		t.Skipf("missing %s: install them (scripts/deps.sh: containerd, runc, docker-registry, skopeo, containernetworking-plugins)", strings.Join(missing, ", "))
	}

	critest := buildCritest(t)
	e := newEnv(t, runsc, shim)
	e.pushImages(t)

	for _, s := range skips {
		t.Logf("skipped for both handlers: /%s/: %s", s.pattern, s.reason)
	}
	results := map[string]map[string]spec{}
	for _, h := range handlers {
		res, err := e.runCritest(t, critest, h)
		if err != nil {
			t.Fatalf("critest with handler %s: %v", h, err)
		}
		results[h] = res
	}

	ref := handlers[0]
	for _, h := range handlers {
		t.Logf("%s: %s", h, counts(results[h]))
	}
	// The harness itself: the reference must pass the basic specs.
	if os.Getenv("CRITEST_FOCUS") == "" {
		for _, name := range sanity {
			if r, ok := results[ref][name]; !ok || r.state != "passed" {
				t.Errorf("harness broken: %q does not pass with %s (%s: %s)", name, ref, r.state, firstLine(r.message))
			}
		}
	}
	for _, cand := range handlers[1:] {
		compare(t, results, ref, cand)
	}
}

// compare reports the specs that pass with handler ref but not with
// cand, but for cand's known gaps.
func compare(t *testing.T, results map[string]map[string]spec, ref, cand string) {
	t.Helper()
	var regressions, onlyCand, bothFail, gapsSeen, gapsClosed []string
	names := make([]string, 0, len(results[ref]))
	for name := range results[ref] {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r, c := results[ref][name], results[cand][name]
		g, isGap := knownGap(cand, name)
		switch {
		case r.state == "passed" && c.state != "passed" && isGap:
			gapsSeen = append(gapsSeen, fmt.Sprintf("%s\n      %s: %s\n      known gap: %s", name, c.state, firstLine(c.message), g.reason))
		case r.state == "passed" && c.state != "passed":
			regressions = append(regressions, fmt.Sprintf("%s\n      %s: %s", name, c.state, firstLine(c.message)))
		case r.state == "passed" && c.state == "passed" && isGap:
			gapsClosed = append(gapsClosed, name)
		case r.state != "passed" && r.state != "skipped" && c.state == "passed":
			onlyCand = append(onlyCand, name)
		case r.state != "passed" && r.state != "skipped" && c.state != "passed" && c.state != "skipped":
			bothFail = append(bothFail, fmt.Sprintf("%s\n      %s: %s", name, ref, firstLine(r.message)))
		}
	}
	for name := range results[cand] {
		if _, ok := results[ref][name]; !ok {
			t.Errorf("spec %q ran with %s but not with %s", name, cand, ref)
		}
	}
	if len(bothFail) > 0 {
		t.Logf("failed with both handlers (%d, not counted against %s):\n  %s", len(bothFail), cand, strings.Join(bothFail, "\n  "))
	}
	if len(onlyCand) > 0 {
		t.Logf("passed with %s but not with %s (%d):\n  %s", cand, ref, len(onlyCand), strings.Join(onlyCand, "\n  "))
	}
	if len(gapsSeen) > 0 {
		t.Logf("known gaps: %d spec(s) pass with %s but not with %s:\n  %s", len(gapsSeen), ref, cand, strings.Join(gapsSeen, "\n  "))
	}
	if len(gapsClosed) > 0 {
		t.Errorf("%d known gap(s) now pass with %s: remove them from gaps:\n  %s", len(gapsClosed), cand, strings.Join(gapsClosed, "\n  "))
	}
	if len(regressions) > 0 {
		t.Errorf("%d spec(s) pass with %s but not with %s:\n  %s", len(regressions), ref, cand, strings.Join(regressions, "\n  "))
	} else {
		t.Logf("every spec that passes with %s passes with %s, but for the %d known gaps", ref, cand, len(gapsSeen))
	}
}

// runCritest runs critest with handler h in the run's network namespace
// (the CRI streaming server listens on its 127.0.0.1) and returns the
// outcome of each spec from Ginkgo's JSON report.
func (e *env) runCritest(t *testing.T, critest, h string) (map[string]spec, error) {
	report := filepath.Join(e.dir, "logs", "critest-"+h+".json")
	logPath := filepath.Join(e.dir, "logs", "critest-"+h+".log")
	args := e.ns.Nsenter(critest,
		"-test.timeout=0",
		"--runtime-endpoint=unix://"+e.sock,
		"--image-endpoint=unix://"+e.sock,
		"--runtime-handler="+h,
		"--config="+filepath.Join(e.dir, "crictl.yaml"),
		"--ginkgo.json-report="+report,
		"--ginkgo.no-color",
		"--ginkgo.seed=1",
		"--ginkgo.timeout=25m",
		"--ginkgo.v",
	)
	for _, s := range skips {
		args = append(args, "--ginkgo.skip="+s.pattern)
	}
	if f := os.Getenv("CRITEST_FOCUS"); f != "" {
		args = append(args, "--ginkgo.focus="+f)
	}
	logF, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logF.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 27*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	dur := time.Since(start).Round(time.Second)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("timed out after %v; log %s:\n%s", dur, logPath, e2e.Tail(logPath, 40))
	}
	res, err := readReport(report)
	if err != nil {
		return nil, fmt.Errorf("%v (critest: %v); log %s:\n%s", err, runErr, logPath, e2e.Tail(logPath, 40))
	}
	t.Logf("critest --runtime-handler=%s: %v, %s (exit: %v); log %s", h, dur, counts(res), runErr, logPath)
	return res, nil
}

// readReport reads Ginkgo's JSON report: the It specs by full text.
func readReport(path string) (map[string]spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no Ginkgo report: %v", err)
	}
	var suites []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeType            string
			LeafNodeText            string
			State                   string
			RunTime                 time.Duration
			Failure                 struct{ Message string }
		}
	}
	if err := json.Unmarshal(data, &suites); err != nil {
		return nil, fmt.Errorf("Ginkgo report %s: %v", path, err)
	}
	res := map[string]spec{}
	for _, s := range suites {
		for _, r := range s.SpecReports {
			if r.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(append([]string{}, r.ContainerHierarchyTexts...), r.LeafNodeText), " ")
			res[name] = spec{state: r.State, message: r.Failure.Message, runTime: r.RunTime}
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("Ginkgo report %s lists no spec", path)
	}
	return res, nil
}

// counts summarizes outcomes: "P passed, F failed, S skipped".
func counts(res map[string]spec) string {
	var p, f, s int
	for _, r := range res {
		switch r.state {
		case "passed":
			p++
		case "skipped", "pending":
			s++
		default:
			f++
		}
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped", p, f, s)
}

var spaces = regexp.MustCompile(`\s+`)

// firstLine shortens a failure message to one line.
func firstLine(msg string) string {
	msg = spaces.ReplaceAllString(strings.TrimSpace(msg), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}
