package nsfork

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// holder starts a process in a new user namespace mapping 0..65535 to
// host 100000.., and returns its namespace.
func holder(t *testing.T) *os.File {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: maps a user namespace to host uids")
	}
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		// The child drops the host groups it comes with.
		GidMappingsEnableSetgroups: true,
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// shellFiles opens /bin/sh to start, a pipe for its output (this side
// reads r; w is the child's, closed by the caller once it is started)
// and /dev/null; all but w are closed at the end of the test.
func shellFiles(t *testing.T) (exe, r, w, devNull *os.File) {
	t.Helper()
	exe, err := os.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exe.Close() })
	r, w, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	devNull, err = os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devNull.Close() })
	return exe, r, w, devNull
}

func TestStartJoinsUserNamespace(t *testing.T) {
	ns := holder(t)
	exe, r, w, devNull := shellFiles(t)
	// Descriptor 3 is given too, out of order with the pipe's own
	// number: the child must see it at 3.
	extra, _ := os.Open("/etc/hostname")
	defer extra.Close()
	script := `cat /proc/self/uid_map; id -u; id -g; echo "$X"; readlink /proc/self/fd/3; ls /proc/self/fd | wc -l; sleep 0.2`
	pid, err := Start(exe, []string{"sh", "-c", script}, []string{"X=given", "PATH=/usr/bin:/bin"}, Attr{
		UserNS: ns, UID: 0, GID: 0, Files: []*os.File{devNull, w, w, extra}, Setsid: true,
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("child: %v, status %v", err, ws)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 6 {
		t.Fatalf("child printed %q", out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "0 100000 65536" {
		t.Errorf("uid_map %q, want the holder's", lines[0])
	}
	if lines[1] != "0" || lines[2] != "0" {
		t.Errorf("uid %s gid %s in the namespace, want 0 0", lines[1], lines[2])
	}
	if lines[3] != "given" || lines[4] != "/etc/hostname" {
		t.Errorf("env %q, fd 3 %q", lines[3], lines[4])
	}
	// 0, 1, 2, 3 and the one ls opens: nothing else leaked.
	if lines[5] != "5" {
		t.Errorf("%s descriptors open in the child, want 5", lines[5])
	}
	if !strings.Contains(string(status), "Uid:\t100000\t100000\t100000") {
		t.Errorf("host view of the child:\n%s", status)
	}
}

func TestStartReportsFailure(t *testing.T) {
	holder(t)
	notNS, _ := os.Open(os.DevNull)
	defer notNS.Close()
	exe, _ := os.Open("/bin/true")
	defer exe.Close()
	_, err := Start(exe, []string{"true"}, nil, Attr{UserNS: notNS})
	if err == nil || !strings.Contains(err.Error(), "setns: invalid argument") {
		t.Fatalf("Start with a non-namespace: %v", err)
	}
}

// TestStartConcurrently forks from many goroutines while others
// allocate (the garbage collector runs meanwhile): every child must
// exec and exit cleanly.
func TestStartConcurrently(t *testing.T) {
	ns := holder(t)
	exe, err := os.Open("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	stop := make(chan struct{})
	go func() {
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
				keep = append(keep, make([]byte, 1<<16))
				if len(keep) > 256 {
					keep = nil
				}
			}
		}
	}()
	defer close(stop)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			for range 8 {
				pid, err := Start(exe, []string{"true"}, nil, Attr{UserNS: ns})
				if err != nil {
					errs <- err
					return
				}
				var ws unix.WaitStatus
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
					errs <- fmt.Errorf("child %d: %v, status %v", pid, err, ws)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartUnshare makes namespaces owned by the joined user namespace:
// with a new pid namespace the process that execs is its pid 1 and
// still the caller's child; a failed exec after that fork is reported
// and its process reaped.
func TestStartUnshare(t *testing.T) {
	ns := holder(t)
	exe, r, w, devNull := shellFiles(t)
	script := `echo $$; readlink /proc/self/ns/mnt; readlink /proc/self/ns/uts; hostname inside && hostname`
	pid, err := Start(exe, []string{"sh", "-c", script}, []string{"PATH=/usr/bin:/bin"}, Attr{
		UserNS: ns, Files: []*os.File{devNull, w, w}, Unshare: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS,
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); err != nil || len(f) < 2 || f[1] != fmt.Sprint(os.Getpid()) {
		t.Errorf("pid %d is not this process's child: %q, %v", pid, st, err)
	}
	out, _ := io.ReadAll(r)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("child %d: %v, status %v (printed %q)", pid, err, ws, out)
	}
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	hostUTS, _ := os.Readlink("/proc/self/ns/uts")
	lines := strings.Fields(string(out))
	if len(lines) != 4 || lines[0] != "1" || lines[1] == hostMnt || lines[2] == hostUTS || lines[3] != "inside" {
		t.Fatalf("child printed %q: want pid 1, new mount and uts namespaces (host's %s %s) it may name", out, hostMnt, hostUTS)
	}

	notExe, _ := os.Open(os.DevNull)
	defer notExe.Close()
	_, err = Start(notExe, []string{"x"}, nil, Attr{UserNS: ns, Unshare: unix.CLONE_NEWPID})
	if err == nil || !strings.Contains(err.Error(), "exec:") {
		t.Fatalf("Start of a non-executable in a new pid namespace: %v", err)
	}
	// The holder is this process's only other child, and lives.
	var rest unix.WaitStatus
	if p, _ := unix.Wait4(-1, &rest, unix.WNOHANG, nil); p > 0 {
		t.Fatalf("a child left unreaped: pid %d", p)
	}
}
