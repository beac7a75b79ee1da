package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"golang.org/x/sys/unix"
)

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", `id; pwd; echo "env=$GREETING"; hostname; ulimit -n; cat /proc/self/oom_score_adj; grep -E "^(CapEff|CapBnd|CapAmb|NoNewPrivs)" /proc/self/status`)
	spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}}
	spec.Process.Cwd = "/home/work"
	spec.Process.Env = append(spec.Process.Env, "GREETING=hello")
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 333, Soft: 222}}
	adj := 123
	spec.Process.OOMScoreAdj = &adj
	spec.Hostname = "settings-host"
	spec.Process.Capabilities.Bounding = []string{"CAP_KILL", "CAP_CHOWN"}
	spec.Process.Capabilities.Effective = []string{"CAP_KILL"}
	spec.Process.Capabilities.Permitted = []string{"CAP_KILL"}
	// A non-root process keeps capabilities across exec only as
	// ambient ones.
	spec.Process.Capabilities.Inheritable = []string{"CAP_KILL"}
	spec.Process.Capabilities.Ambient = []string{"CAP_KILL"}
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "settings")
	for _, want := range []string{
		"uid=1000 gid=1000 groups=10,20",
		"/home/work\n",
		"env=hello\n",
		"settings-host\n",
		"222\n",
		"123\n",
		fmt.Sprintf("CapEff:\t%016x", 1<<unix.CAP_KILL),
		fmt.Sprintf("CapBnd:\t%016x", 1<<unix.CAP_KILL|1<<unix.CAP_CHOWN),
		fmt.Sprintf("CapAmb:\t%016x", 1<<unix.CAP_KILL),
		"NoNewPrivs:\t1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestNoCapabilitiesMeansNone checks that a process without
// process.capabilities, run as root, in the container and through exec
// --process, gets no capability at all, as with runc: not runsc's own.
func TestNoCapabilitiesMeansNone(t *testing.T) {
	e := newEnv(t)
	const show = `grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status`
	spec := testSpec("sh", "-c", show+"; sleep 100000")
	spec.Process.Capabilities = nil
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "nocaps")
	procFile := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", show}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	if err := os.WriteFile(procFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.saved("nocaps").InitPID))
	if err != nil {
		t.Fatal(err)
	}
	for who, out := range map[string]string{
		"init":           string(status),
		"exec'd process": e.must("exec", "--process", procFile, "nocaps"),
	} {
		for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if want := set + ":\t0000000000000000\n"; !strings.Contains(out, want) {
				t.Errorf("%s: no %q in:\n%s", who, want, out)
			}
		}
	}
}

func TestSeccompProfile(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "mkdir /tmp/blocked 2>&1; echo status=$?")
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(unix.EACCES); return &v }(),
		}},
	}
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "seccomp")
	if !strings.Contains(out, "Permission denied") || strings.Contains(out, "status=0") {
		t.Fatalf("mkdir under a profile that blocks it: %q", out)
	}
}

// TestSeccompProfileWithoutRuntimeCalls runs under profiles that deny
// what runsc itself calls while setting a process up (close_range, and
// prctl and capset, which only the calls before the filter need with
// no_new_privs): the filter is installed last, as runc does, so only the
// process is filtered.
func TestSeccompProfileWithoutRuntimeCalls(t *testing.T) {
	e := newEnv(t)
	for _, nnp := range []bool{true, false} {
		spec := testSpec("sh", "-c", "echo filtered-ok")
		spec.Process.NoNewPrivileges = nnp
		denied := []string{"close_range"}
		if nnp {
			denied = append(denied, "prctl", "capset", "setresuid", "setresgid", "setgroups")
		}
		spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: denied, Action: specs.ActErrno}},
		}
		b := newBundle(t, spec)
		if out := e.must("run", "--bundle", b.dir, "seccomp-late-"+strconv.FormatBool(nnp)); out != "filtered-ok\n" {
			t.Fatalf("no_new_privs=%v: %q", nnp, out)
		}
	}
}

// recvFD receives one descriptor sent with SCM_RIGHTS on c.
func recvFD(c *net.UnixConn) (*os.File, error) {
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("control messages %v %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("rights %v %v", fds, err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The goroutine reports; only the test's own goroutine fails it.
	type received struct {
		f   *os.File
		err error
	}
	got := make(chan received, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			got <- received{err: err}
			return
		}
		defer c.Close()
		f, err := recvFD(c)
		got <- received{f, err}
	}()
	spec := testSpec("sh", "-c", "tty; echo from-the-terminal")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 40, Width: 120}
	b := newBundle(t, spec)
	e.must("create", "--bundle", b.dir, "--console-socket", sock, "tty")
	var master *os.File
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("console socket: %v", r.err)
		}
		master = r.f
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master on the console socket")
	}
	defer master.Close()
	e.must("start", "tty")
	out := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil || strings.Contains(string(all), "from-the-terminal") {
				out <- string(all)
				return
			}
		}
	}()
	select {
	case s := <-out:
		if !strings.Contains(s, "/dev/pts/0") || !strings.Contains(s, "from-the-terminal") {
			t.Fatalf("terminal output %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no output on the pty")
	}
	e.must("wait", "tty")
	e.must("delete", "tty")
}

func TestJoinNetworkNamespace(t *testing.T) {
	requireRoot(t)
	// Make a network namespace and pin it to a file.
	nsFile := filepath.Join(t.TempDir(), "netns")
	os.WriteFile(nsFile, nil, 0o644)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), nsFile, "", unix.MS_BIND, "")
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(nsFile, unix.MNT_DETACH)
	var st unix.Stat_t
	if err := unix.Stat(nsFile, &st); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	spec := testSpec("readlink", "/proc/self/ns/net")
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = nsFile
		}
	}
	b := newBundle(t, spec)
	// Joined as it is with --adopt-netns=false; by default the pod
	// adopts it (see TestNetNSAdopted): the file then names the
	// container's namespace.
	out := newEnv(t, "--adopt-netns=false").must("run", "--bundle", b.dir, "netns-joined")
	if want := fmt.Sprintf("net:[%d]\n", st.Ino); out != want {
		t.Fatalf("container in %q, want %q", out, want)
	}
	out = e.must("run", "--bundle", b.dir, "netns")
	if err := unix.Stat(nsFile, &st); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]\n", st.Ino); out != want {
		t.Fatalf("container in %q, the file names %q", out, want)
	}
	t.Run("not a namespace", func(t *testing.T) {
		spec.Linux.Namespaces[1].Path = filepath.Join(b.dir, "config.json")
		b.writeSpec(t, spec)
		r := e.exec("", "run", "--bundle", b.dir, "netns-bad")
		if r.code == 0 || !strings.Contains(r.stderr, "network") {
			t.Fatalf("bad netns path: exit %d %q", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(e.root, "netns-bad")); !os.IsNotExist(err) {
			t.Fatalf("state left behind: %v", err)
		}
	})
}

func TestPsAndKillAll(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sh", "-c", "sleep 1000 & sleep 1000 & wait"))
	e.must("run", "-d", "--bundle", b.dir, "psk")
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out := e.must("ps", "--format", "json", "psk")
		pids = nil
		for _, f := range strings.Fields(strings.NewReplacer("[", "", "]", "", ",", " ").Replace(out)) {
			var p int
			fmt.Sscan(f, &p)
			pids = append(pids, p)
		}
		if len(pids) == 3 {
			break
		}
	}
	if len(pids) != 3 {
		t.Fatalf("ps lists %v, want sh and two sleeps", pids)
	}
	for _, p := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil || (string(comm) != "sh\n" && string(comm) != "sleep\n") {
			t.Fatalf("ps pid %d is %q (%v): not a host pid of the container", p, comm, err)
		}
	}
	e.must("kill", "--all", "psk", "KILL")
	for _, p := range pids {
		waitGone(t, p)
	}
	if st := e.state("psk"); st.Status != specs.StateStopped {
		t.Fatalf("after kill --all: %s", st.Status)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"))
	c := e.cmd("run", "--bundle", b.dir, "fwd")
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout = out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(out.Name()); strings.Contains(string(b), "ready") {
			break
		}
	}
	c.Process.Signal(unix.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		t.Fatal("runsc run did not exit after SIGTERM")
	}
	if code := c.ProcessState.ExitCode(); code != 42 {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("exit %d, want 42 from the container's TERM trap (output %q)", code, b)
	}
}

func TestRunRelaysTerminal(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "tty; echo relayed; exit 3")
	spec.Process.Terminal = true
	b := newBundle(t, spec)
	r := e.exec("", "run", "--bundle", b.dir, "relay")
	if r.code != 3 || !strings.Contains(r.stdout, "/dev/pts/0") || !strings.Contains(r.stdout, "relayed") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestNoHostDevices(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "mknod /tmp/disk b 8 0 2>&1; echo mknod=$?; head -c 1 /hostnull >/dev/null 2>&1; echo open=$?; head -c 1 /dev/zero | wc -c")
	for _, set := range []*[]string{&spec.Process.Capabilities.Bounding, &spec.Process.Capabilities.Effective, &spec.Process.Capabilities.Permitted} {
		*set = append(*set, "CAP_MKNOD")
	}
	b := newBundle(t, spec)
	// A device node shipped in the image: the root is mounted nodev.
	if err := unix.Mknod(filepath.Join(b.rootfs, "hostnull"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	out := e.must("run", "--bundle", b.dir, "nodev")
	if !strings.Contains(out, "mknod=1") || !strings.Contains(out, "open=1") || !strings.HasSuffix(out, "1\n") {
		t.Fatalf("device access: %q (want mknod and image device refused, /dev/zero working)", out)
	}
	t.Run("linux.devices of host hardware left out", func(t *testing.T) {
		// As a privileged container's spec lists every host device:
		// the container runs without those that reach hardware or
		// another's terminal (the console, a pty slave of the host's
		// devpts), in the pod's user namespace and with --userns=host.
		script := `for d in /dev/sda /dev/kmsg /dev/mem /dev/sg0 /dev/ttyS9 /dev/kvm /dev/console /dev/pts9; do
			test -e $d && echo exists:$d; done; ls -l /dev/zero`
		spec := testSpec("sh", "-c", script)
		spec.Linux.Devices = []specs.LinuxDevice{
			{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0},
			{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11},
			{Path: "/dev/mem", Type: "c", Major: 1, Minor: 1},
			{Path: "/dev/sg0", Type: "c", Major: 21, Minor: 0},
			{Path: "/dev/ttyS9", Type: "c", Major: 4, Minor: 73},
			{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232},
			{Path: "/dev/console", Type: "c", Major: 5, Minor: 1},
			{Path: "/dev/pts9", Type: "c", Major: 136, Minor: 9},
			{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
		}
		b := newBundle(t, spec)
		for _, env := range []*runscEnv{e, newEnv(t, "--userns=host")} {
			out := env.must("run", "--bundle", b.dir, "hostdevs")
			if strings.Contains(out, "exists:") || !strings.Contains(out, "1,   5") {
				t.Fatalf("devices in the container (%v): %q (want every one left out, /dev/zero made)", env.extra, out)
			}
		}
	})
}

// TestHostNamespacesFromSpec checks that the pod's ipc and uts
// namespaces are the spec's, as runc's are for a container: a type the
// spec does not list is the host's (Kubernetes hostIPC), a listed one is
// new.
func TestHostNamespacesFromSpec(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sleep", "1000")
	spec.Hostname = ""
	var kept []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.IPCNamespace && ns.Type != specs.UTSNamespace {
			kept = append(kept, ns)
		}
	}
	spec.Linux.Namespaces = kept
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "hostipc")
	init := e.saved("hostipc").InitPID
	for _, ns := range []string{"ipc", "uts"} {
		if !sameNS(t, init, os.Getpid(), ns) {
			t.Errorf("the container is not in the host's %s namespace, which its spec does not replace", ns)
		}
	}
	if sameNS(t, init, os.Getpid(), "pid") || sameNS(t, init, os.Getpid(), "mnt") {
		t.Error("the container shares the host's pid or mount namespace")
	}
	e.must("delete", "--force", "hostipc")

	t.Run("listed namespaces are new", func(t *testing.T) {
		b := newBundle(t, testSpec("sleep", "1000"))
		e.must("run", "-d", "--bundle", b.dir, "ownipc")
		init := e.saved("ownipc").InitPID
		for _, ns := range []string{"ipc", "uts", "net"} {
			if sameNS(t, init, os.Getpid(), ns) {
				t.Errorf("the container shares the host's %s namespace", ns)
			}
		}
		e.must("delete", "--force", "ownipc")
	})
}

// TestLSMLabelsWithoutLSM runs a spec with an AppArmor profile and
// SELinux labels (as podman and containerd send them on hosts that have
// those LSMs) on a host without them: ignored, as runc does, the
// container runs.
func TestLSMLabelsWithoutLSM(t *testing.T) {
	if boot.AppArmorEnabled() || boot.SELinuxEnabled() {
		t.Skip("this host enforces AppArmor or SELinux: the labels would apply")
	}
	e := newEnv(t)
	spec := testSpec("sh", "-c", "echo labelled > /tmp/f && cat /tmp/f")
	spec.Process.ApparmorProfile = "containers-default-0.50.1"
	spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
	spec.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	b := newBundle(t, spec)
	if out := e.must("run", "--bundle", b.dir, "labelled"); out != "labelled\n" {
		t.Fatalf("output %q", out)
	}
}

// TestSignalExit checks that a container killed by a signal is reported
// as 128+signal, as runc's callers read it: the exit status of a
// foreground `runsc run`, and `runsc wait` and the state of a killed
// detached container.
func TestSignalExit(t *testing.T) {
	e := newEnv(t)
	// A foreground run whose init is killed from outside (pid 1 of
	// its namespace ignores a signal it sends itself).
	b := newBundle(t, testSpec("sleep", "1000"))
	run := e.cmd("run", "--bundle", b.dir, "fg-killed")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, err := e.run("state", "fg-killed"); err == nil && strings.Contains(out, `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			run.Process.Kill()
			t.Fatal("the foreground container never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.must("kill", "fg-killed", "KILL")
	select {
	case <-exited:
		if code := run.ProcessState.ExitCode(); code != 128+9 {
			t.Fatalf("run of a container killed by SIGKILL: exit %d, want 137", code)
		}
	case <-time.After(20 * time.Second):
		run.Process.Kill()
		t.Fatal("run did not return after its container was killed")
	}
	b2 := newBundle(t, testSpec("sleep", "1000"))
	e.must("run", "-d", "--bundle", b2.dir, "killed")
	// SIGKILL: pid 1 of its namespace, sleep ignores the signals it
	// has no handler for, as with runc.
	e.must("kill", "killed", "KILL")
	var w struct{ ExitStatus int }
	out := e.must("wait", "killed")
	// The init of a detached container is this test's to reap (its
	// creator exited; the suite is a child subreaper): if it reaped
	// first, the sandbox knows the exit but not its status (-1).
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.ExitStatus != 128+9 && w.ExitStatus != -1 {
		t.Fatalf("wait after SIGKILL: %q (%v), want exit status 137 (or -1, reaped first)", out, err)
	}
	if st := e.state("killed"); st.Status != "stopped" {
		t.Fatalf("state after SIGKILL: %q", st.Status)
	}
}

// TestMaskedAndReadonlyPaths checks linux.maskedPaths (a file reads
// empty, a directory lists empty) and linux.readonlyPaths (writes are
// refused) inside the container.
func TestMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "wc -c < /proc/keys; ls /proc/tty | wc -l; echo x 2>/dev/null > /proc/sys/kernel/hostname; echo status=$?; cat /proc/sys/kernel/ostype")
	spec.Linux.MaskedPaths = []string{"/proc/keys", "/proc/tty"}
	spec.Linux.ReadonlyPaths = []string{"/proc/sys"}
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "masked")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.TrimSpace(lines[0]) != "0" || strings.TrimSpace(lines[1]) != "0" || lines[2] == "status=0" || lines[3] != "Linux" {
		t.Fatalf("masked file, masked directory, read-only /proc/sys, readable /proc/sys: %q", out)
	}
	// Without them, the same container sees the files and may write.
	spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
	spec.Process.Args = []string{"sh", "-c", "ls /proc/tty | wc -l"}
	b.writeSpec(t, spec)
	if out := strings.TrimSpace(e.must("run", "--bundle", b.dir, "unmasked")); out == "0" {
		t.Fatalf("/proc/tty lists nothing without a mask: the check above proves nothing")
	}
}

// TestTightRlimits: limits below what runsc's own init needs (an address
// space smaller than its Go runtime's) apply to the process: the init
// sets them right before the exec, so it does not die under them (it
// did, rarely, when it waited for start under them), and the soft
// open-files limit is the spec's, not the one runsc started with.
func TestTightRlimits(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", `grep -E "^Max (address space|open files)" /proc/self/limits | tr -s ' ' | cut -d' ' -f1-6`)
	spec.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_AS", Soft: 64 << 20, Hard: 64 << 20},
		{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 4096},
	}
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "tight")
	if want := "Max open files 100 4096 files\nMax address space 67108864 67108864 bytes\n"; out != want {
		t.Fatalf("limits %q, want %q", out, want)
	}
}

// TestRaisedRlimits: a hard limit above the one runsc runs with is set
// (by runsc, host root, for the init in the pod's user namespace, which
// may not raise it), for the init and for an exec'd process, as runc
// does.
func TestRaisedRlimits(t *testing.T) {
	e := newEnv(t)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	hard := cur.Max + 1000
	spec := testSpec("sh", "-c", "ulimit -Hn; sleep 100000")
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: hard}}
	b := newBundle(t, spec)
	if !hasCap(t, unix.CAP_SYS_RESOURCE) {
		// As for runc: raising a hard limit takes the capability (some
		// VMs' root lacks it). A clear error, nothing left.
		wantOneLineError(t, e.exec("", "run", "-d", "--bundle", b.dir, "raised"), fmt.Sprintf("process.rlimits RLIMIT_NOFILE: raising the hard limit to %d: operation not permitted", hard))
		if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "" {
			t.Errorf("containers left: %q", out)
		}
		return
	}
	e.must("run", "-d", "--bundle", b.dir, "raised")
	proc := `{"args":["sh","-c","ulimit -Sn; ulimit -Hn"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":4096,"hard":` + fmt.Sprint(hard+1) + `}]}`
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, []byte(proc), 0o644)
	if out := e.must("exec", "--process", pf, "raised"); out != fmt.Sprintf("4096\n%d\n", hard+1) {
		t.Errorf("exec'd process limits %q, want 4096 and %d", out, hard+1)
	}
	e.must("delete", "--force", "raised")
}

// hasCap reports whether this process has capability c in its effective
// set.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && eff&(1<<uint(c)) != 0
		}
	}
	return false
}
