package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/tests/internal/posixsuite"
	"golang.org/x/sys/unix"
)

// posixGaps are the posixtest tests that pass natively but not in a
// container, by where the suite runs, each with its measured reason. A
// gap that passes fails the test until it is removed: the list only
// shrinks.
var posixGaps = map[string]map[string]string{
	"write-through root": servedGaps,
	"memory overlay":     {},
	"volume":             servedGaps,
}

// servedGaps are the gaps of a directory the gofer serves: none.
var servedGaps = map[string]string{}

// posixOutcome is one test's result: PASS, FAIL or SKIP.
type posixOutcome string

var posixResult = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (Test\S+)`)

// parsePosix reads the outcomes from the suite's -test.v output: each
// posixtest test by its name, each of the suite's own tests by its
// function name (TestPosix itself, their parent, is left out).
func parsePosix(out string) map[string]posixOutcome {
	res := map[string]posixOutcome{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := posixResult.FindStringSubmatch(sc.Text()); m != nil && m[2] != "TestPosix" {
			res[strings.TrimPrefix(m[2], "TestPosix/")] = posixOutcome(m[1])
		}
	}
	return res
}

// buildPosixSuite compiles tests/internal/posixsuite into a static test
// binary.
func buildPosixSuite(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "posixsuite.test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, "./internal/posixsuite")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the posixtest suite: %v: %s", err, out)
	}
	return bin
}

// TestPosixSuite runs go-fuse's posixtest suite, and the file tests of
// tests/internal/posixsuite (large sparse files, 5,000 open files,
// names, hard links, renames, shared mmap, locks, syncs), natively on a
// host directory (the reference) and inside containers: in a directory
// of a write-through root, of a memory-overlay root, and on a
// bind-mounted volume. Every test that passes natively must pass in
// each, but for the listed gaps.
func TestPosixSuite(t *testing.T) {
	requireRoot(t)
	bin := buildPosixSuite(t)
	native := exec.Command(bin, "-test.v")
	native.Env = append(os.Environ(), posixsuite.DirEnv+"="+t.TempDir())
	out, _ := native.CombinedOutput()
	ref := parsePosix(string(out))
	if len(ref) < 30 {
		t.Fatalf("native run: %d results:\n%s", len(ref), out)
	}
	var names []string
	for name, o := range ref {
		names = append(names, name)
		if o != "PASS" {
			t.Logf("native: %s %s (not required in containers)", name, o)
		}
	}
	sort.Strings(names)

	for _, where := range []string{"write-through root", "memory overlay", "volume"} {
		t.Run(where, func(t *testing.T) {
			e := modeEnv(t, where)
			dir := "/scratch"
			spec := testSpec("/posixsuite.test", "-test.v")
			spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 8192, Soft: 8192}}
			// The capabilities Docker gives by default: the suite
			// chowns and sets modes as the files' owner would.
			caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
				"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
			spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
			if where == "volume" {
				dir = "/vol"
				spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dir, Type: "bind", Source: t.TempDir(), Options: []string{"rbind", "rw"}})
			}
			spec.Process.Env = append(spec.Process.Env, posixsuite.DirEnv+"="+dir)
			b := newBundle(t, spec)
			if err := os.Mkdir(filepath.Join(b.rootfs, "scratch"), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("cp", bin, filepath.Join(b.rootfs, "posixsuite.test")).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			r := e.exec("", "run", "--bundle", b.dir, "posix")
			got := parsePosix(r.stdout)
			if where != "memory overlay" {
				// A shared mapping's msync'ed write is on the host.
				host := filepath.Join(b.rootfs, "scratch")
				if where == "volume" {
					host = spec.Mounts[len(spec.Mounts)-1].Source
				}
				mapped, _ := filepath.Glob(filepath.Join(host, "TestSharedMmap-*", "mapped"))
				if data, err := os.ReadFile(strings.Join(mapped, "")); err != nil || len(data) < 4108 || string(data[4096:4108]) != "mapped write" {
					t.Errorf("the shared mapping's write is not on the host (%v, %v)", mapped, err)
				}
			}
			if len(got) != len(ref) {
				t.Fatalf("%d results in the container, %d natively (exit %d):\n%s\n%s", len(got), len(ref), r.code, r.stdout, r.stderr)
			}
			gaps := posixGaps[where]
			for _, name := range names {
				reason, gap := gaps[name]
				switch {
				case ref[name] != "PASS":
				case got[name] == "PASS" && gap:
					t.Errorf("%s passes now: remove it from the gaps (%s)", name, reason)
				case got[name] != "PASS" && gap:
					t.Logf("known gap: %s %s: %s", name, got[name], reason)
				case got[name] != "PASS":
					t.Errorf("%s passes natively, %s in the container:\n%s", name, got[name], posixDetail(r.stdout, name))
				}
			}
		})
	}
}

// posixDetail returns the suite's output about test name: the lines
// from its "=== RUN" line to the next test's.
func posixDetail(out, name string) string {
	full := name
	if !strings.HasPrefix(name, "Test") {
		full = "TestPosix/" + name
	}
	var lines []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "=== RUN") {
			in = strings.TrimSpace(strings.TrimPrefix(l, "=== RUN")) == full
		}
		if in {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestFileCapabilities checks that a file capability set on the host (as
// setcap cap_net_raw+ep writes it) reaches the container, with either
// root, and gives the capability to a non-root user who runs the file.
func TestFileCapabilities(t *testing.T) {
	requireRoot(t)
	for _, flags := range [][]string{nil, {"--overlay2=root:memory"}} {
		t.Run(fmt.Sprintf("flags %v", flags), func(t *testing.T) {
			e := newEnv(t, flags...)
			spec := testSpec("/capbin/busybox", "grep", "^Cap[PE]", "/proc/self/status")
			spec.Process.User = specs.User{UID: 1000, GID: 1000}
			spec.Process.NoNewPrivileges = false
			caps := append(spec.Process.Capabilities.Bounding, "CAP_NET_RAW")
			spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
			b := newBundle(t, spec)
			dir := filepath.Join(b.rootfs, "capbin")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(dir, "busybox")
			if out, err := exec.Command("cp", filepath.Join(b.rootfs, "bin", "busybox"), bin).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			// struct vfs_cap_data, revision 2, effective:
			// permitted CAP_NET_RAW.
			v := make([]byte, 20)
			binary.LittleEndian.PutUint32(v, 0x02000000|1)
			binary.LittleEndian.PutUint32(v[4:], 1<<unix.CAP_NET_RAW)
			if err := unix.Setxattr(bin, "security.capability", v, 0); err != nil {
				t.Fatal(err)
			}
			out := e.must("run", "--bundle", b.dir, "fcaps")
			want := fmt.Sprintf("%016x", uint64(1)<<unix.CAP_NET_RAW)
			if !strings.Contains(out, "CapPrm:\t"+want) || !strings.Contains(out, "CapEff:\t"+want) {
				t.Fatalf("uid 1000 running a cap_net_raw+ep binary: %q, want CapPrm and CapEff %s", out, want)
			}
			// As getcap reads it inside: the pod's root owns it, so
			// the kernel shows revision 2.
			if out, err := exec.Command("cp", buildPosixSuite(t), filepath.Join(b.rootfs, "posixsuite.test")).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			spec.Process.Args = []string{"/posixsuite.test", "-test.run", "^TestShowCaps$"}
			spec.Process.Env = append(spec.Process.Env, "POSIXSUITE_SHOW_CAPS=/capbin/busybox")
			b.writeSpec(t, spec)
			if out := e.must("run", "--bundle", b.dir, "getcap"); !strings.Contains(out, fmt.Sprintf("caps 2 %#x\n", 1<<unix.CAP_NET_RAW)) {
				t.Fatalf("security.capability read inside: %q, want revision 2 with cap_net_raw", out)
			}
		})
	}
}

// TestLocksAcrossContainers checks flock and open file description
// locks between two containers of a pod sharing a volume (one FUSE mount
// in the pod's sandbox, whose kernel keeps the locks): one holds them,
// the other is refused, and a new pod gets them once the holder is gone.
func TestLocksAcrossContainers(t *testing.T) {
	requireRoot(t)
	bin := buildPosixSuite(t)
	e := newEnv(t)
	vol := t.TempDir()
	member := func(sandbox, test, env string) *bundle {
		spec := podSpec(sandbox, "/posixsuite.test", "-test.v", "-test.run", "^"+test+"$")
		spec.Process.Env = append(spec.Process.Env, env+"=/vol/lock")
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
		b := newBundle(t, spec)
		if out, err := exec.Command("cp", bin, filepath.Join(b.rootfs, "posixsuite.test")).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return b
	}
	e.must("run", "-d", "--bundle", member("", "TestLockHold", "POSIXSUITE_LOCK_HOLD").dir, "holder")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(vol, "lock.held")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder never took the locks")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.exec("", "run", "--bundle", member("holder", "TestLockProbe", "POSIXSUITE_LOCK_PROBE").dir, "prober"); r.code != 0 || !strings.Contains(r.stdout, "--- PASS: TestLockProbe") {
		t.Fatalf("probe while held: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.must("kill", "holder", "KILL")
	e.must("wait", "holder")
	// The holder's sandbox container is the pod: a new pod takes the
	// lock once the holder's descriptors are gone.
	e.must("delete", "--force", "holder")
	if r := e.exec("", "run", "--bundle", member("", "TestLockFree", "POSIXSUITE_LOCK_FREE").dir, "taker"); r.code != 0 || !strings.Contains(r.stdout, "--- PASS: TestLockFree") {
		t.Fatalf("take once free: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// aclXattr returns a system.posix_acl_access value: the owner rw, the
// named user uid r, the group none, the mask r, others none.
func aclXattr(uid uint32) []byte {
	entry := func(tag, perm uint16, id uint32) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint16(b, tag)
		binary.LittleEndian.PutUint16(b[2:], perm)
		binary.LittleEndian.PutUint32(b[4:], id)
		return b
	}
	const undefined = ^uint32(0)
	v := []byte{2, 0, 0, 0}
	for _, e := range [][]byte{entry(0x01, 6, undefined), entry(0x02, 4, uid), entry(0x04, 0, undefined), entry(0x10, 4, undefined), entry(0x20, 0, undefined)} {
		v = append(v, e...)
	}
	return v
}

// TestACLs checks that a POSIX ACL the host set grants what it says in
// the container (the kernel enforces it, its named user meaning the same
// uid inside), for both roots.
func TestACLs(t *testing.T) {
	requireRoot(t)
	for _, flags := range [][]string{nil, {"--overlay2=root:memory"}} {
		t.Run(fmt.Sprintf("flags %v", flags), func(t *testing.T) {
			e := newEnv(t, flags...)
			spec := testSpec("sh", "-c", "cat /acl/granted; cat /acl/private 2>&1 | grep -c 'Permission denied'")
			spec.Process.User = specs.User{UID: 1234, GID: 1234}
			b := newBundle(t, spec)
			dir := filepath.Join(b.rootfs, "acl")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"granted", "private"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Setxattr(filepath.Join(dir, "granted"), "system.posix_acl_access", aclXattr(1234), 0); err != nil {
				t.Skipf("the host file system takes no ACL: %v", err)
			}
			if out := e.must("run", "--bundle", b.dir, "acl"); out != "granted\n1\n" {
				t.Fatalf("uid 1234 reading a file its ACL grants and one it does not: %q", out)
			}
		})
	}
}
