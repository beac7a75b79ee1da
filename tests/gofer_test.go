package tests

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/runsc/runsc/gofer"
	"github.com/runsc/runsc/internal/testhelp"
	"golang.org/x/sys/unix"
)

// goferProc is a running gofer and a 9P client per served tree.
type goferProc struct {
	cmd     *exec.Cmd
	clients []*p9.Client
	roots   []p9.File
	done    chan error
}

// attach makes a 9P client on f and attaches to its tree.
func attach(t *testing.T, f *os.File) (*p9.Client, p9.File) {
	t.Helper()
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	client, err := p9.NewClient(c, p9.WithMessageSize(256<<10))
	if err != nil {
		t.Fatalf("9P version handshake with gofer: %v", err)
	}
	root, err := client.Attach("/")
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return client, root
}

// startGofer starts `runsc gofer` for trees through gofer.Command, the
// launcher the runtime uses.
func startGofer(t *testing.T, trees ...gofer.Tree) *goferProc {
	t.Helper()
	return startGoferFUSE(t, nil, trees...)
}

// startGoferFUSE is startGofer with /dev/fuse files for passthrough (nil,
// or one per tree).
func startGoferFUSE(t *testing.T, fuse []*os.File, trees ...gofer.Tree) *goferProc {
	t.Helper()
	requireRoot(t)
	var mine, theirs []*os.File
	for range trees {
		a, b := testhelp.SocketPair(t)
		mine, theirs = append(mine, a), append(theirs, b)
	}
	cmd := gofer.Command(runscBin, nil, trees, theirs, fuse)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range theirs {
		f.Close()
	}
	g := &goferProc{cmd: cmd, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait() }()
	t.Cleanup(func() {
		g.close()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("gofer did not exit after its connections closed")
		}
	})
	for _, f := range mine {
		c, r := attach(t, f)
		g.clients, g.roots = append(g.clients, c), append(g.roots, r)
	}
	return g
}

// close closes every client connection.
func (g *goferProc) close() {
	for i, c := range g.clients {
		g.roots[i].Close()
		c.Close()
	}
	g.clients, g.roots = nil, nil
}

// p9errno extracts the errno of a 9P error.
func p9errno(err error) unix.Errno {
	return unix.Errno(linux.ExtractErrno(err))
}

// mustFail fails the test unless err is one of the errnos.
func mustFail(t *testing.T, what string, err error, want ...unix.Errno) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want an error", what)
	}
	got := p9errno(err)
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Fatalf("%s: got %v, want one of %v", what, err, want)
}

func walk(t *testing.T, f p9.File, names ...string) p9.File {
	t.Helper()
	_, c, err := f.Walk(names)
	if err != nil {
		t.Fatalf("walk %v: %v", names, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readAll(t *testing.T, f p9.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 128<<10)
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if n == 0 || err != nil {
			return string(out)
		}
	}
}

func TestGoferServesTree(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "existing"), []byte("from the host"), 0o644)
	g := startGofer(t, gofer.Tree{Source: dir})
	root := g.roots[0]

	t.Run("create write read", func(t *testing.T) {
		d := walk(t, root)
		f, _, _, err := d.Create("made-by-client", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("written over 9P"), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r := walk(t, root, "made-by-client")
		if _, _, err := r.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, r); got != "written over 9P" {
			t.Fatalf("read back %q", got)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "made-by-client")); string(got) != "written over 9P" {
			t.Fatalf("host file holds %q", got)
		}
	})
	t.Run("rename delete", func(t *testing.T) {
		if err := root.RenameAt("made-by-client", root, "renamed"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "renamed")); err != nil {
			t.Fatal(err)
		}
		if err := root.UnlinkAt("renamed", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "renamed")); !os.IsNotExist(err) {
			t.Fatalf("file still there: %v", err)
		}
	})
	t.Run("read host file", func(t *testing.T) {
		r := walk(t, root, "existing")
		if _, _, err := r.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, r); got != "from the host" {
			t.Fatalf("read %q", got)
		}
	})
	t.Run("readdir", func(t *testing.T) {
		for i := 0; i < 300; i++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("many-%03d", i)), nil, 0o644)
		}
		d := walk(t, root)
		if _, _, err := d.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		off := uint64(0)
		for {
			ents, err := d.Readdir(off, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) == 0 {
				break
			}
			for _, e := range ents {
				names[e.Name] = true
			}
			off = ents[len(ents)-1].Offset
		}
		if len(names) != 301 {
			t.Fatalf("readdir returned %d names, want 301", len(names))
		}
	})
}

// hostState records every entry under dir: what an escape must not change.
func hostState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		var st unix.Stat_t
		if err != nil || unix.Lstat(path, &st) != nil {
			out[path] = "unreadable"
			return nil
		}
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d mtime=%d.%d", st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, _ := os.ReadFile(path)
			s += " content=" + strconv.Quote(string(b))
		}
		out[path] = s
		return nil
	})
	return out
}

func TestGoferEscapes(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.MkdirAll(filepath.Join(outside, "dir"), 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)
	os.WriteFile(filepath.Join(outside, "dir", "inner"), []byte("inner secret"), 0o600)
	os.WriteFile(filepath.Join(root, "file"), []byte("inside"), 0o644)
	links := map[string]string{
		"abs":    filepath.Join(outside, "secret"),
		"rel":    "../outside/secret",
		"deep":   "../../../../../../../../../.." + filepath.Join(outside, "secret"),
		"shadow": "/etc/shadow",
		"absdir": filepath.Join(outside, "dir"),
		"reldir": "../outside/dir",
		"proc":   "/proc/self/root" + outside,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A device node in the tree: the gofer mounts trees nodev.
	if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	watch := []string{outside, "/etc/shadow", "/etc/passwd"}
	before := map[string]map[string]string{}
	for _, w := range watch {
		before[w] = hostState(t, w)
	}
	g := startGofer(t, gofer.Tree{Source: root})
	r := g.roots[0]

	for name := range links {
		t.Run("symlink "+name, func(t *testing.T) {
			f := walk(t, r, name)
			mustFail(t, "truncate", f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), unix.ELOOP, unix.EINVAL)
			mustFail(t, "chmod", f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), unix.EOPNOTSUPP, unix.ELOOP)
			for _, mode := range []p9.OpenFlags{p9.ReadOnly, p9.ReadWrite, p9.WriteOnly | p9.OpenFlags(unix.O_TRUNC)} {
				_, _, err := walk(t, r, name).Open(mode)
				mustFail(t, fmt.Sprintf("open %v", mode), err, unix.ELOOP, unix.EINVAL)
			}
			if _, c, err := r.Walk([]string{name, "inner"}); err == nil {
				c.Close()
				t.Fatal("walked through a symlink")
			}
			d := walk(t, r, name)
			if _, err := d.Mkdir("planted", 0o755, p9.NoUID, p9.NoGID); err == nil {
				t.Fatal("mkdir through a symlink succeeded")
			}
			// chown and utimes change the link, not its target.
			if err := f.SetAttr(p9.SetAttrMask{UID: true, GID: true}, p9.SetAttr{UID: 4321, GID: 4321}); err != nil {
				t.Fatalf("lchown: %v", err)
			}
			if err := f.SetAttr(p9.SetAttrMask{MTime: true, MTimeNotSystemTime: true}, p9.SetAttr{MTimeSeconds: 1}); err != nil {
				t.Fatalf("lutimes: %v", err)
			}
			// A hard link to it links the symlink itself.
			if err := r.Link(f, name+".hard"); err != nil {
				t.Fatalf("link: %v", err)
			}
			if err := r.RenameAt(name+".hard", r, name+".moved"); err != nil {
				t.Fatalf("rename: %v", err)
			}
			if err := r.UnlinkAt(name+".moved", 0); err != nil {
				t.Fatalf("unlink: %v", err)
			}
		})
	}
	t.Run("dotdot and absolute names", func(t *testing.T) {
		for _, names := range [][]string{{".."}, {"d", ".."}, {"/"}, {outside}, {"../outside"}, {"."}, {""}} {
			if _, c, err := r.Walk(names); err == nil {
				c.Close()
				t.Fatalf("walk %q succeeded", names)
			}
		}
		if _, err := r.Mkdir("../escaped", 0o755, p9.NoUID, p9.NoGID); err == nil {
			t.Fatal("mkdir ../escaped succeeded")
		}
		if err := r.RenameAt("file", r, "../outside/secret"); err == nil {
			t.Fatal("rename to ../outside/secret succeeded")
		}
		if _, err := r.Symlink("x", "/tmp/escaped", p9.NoUID, p9.NoGID); err == nil {
			t.Fatal("symlink named /tmp/escaped succeeded")
		}
	})
	t.Run("symlink swapped in between walk and open", func(t *testing.T) {
		os.WriteFile(filepath.Join(root, "swap"), []byte("inside"), 0o644)
		f := walk(t, r, "swap")
		g2 := walk(t, r, "swap")
		os.Remove(filepath.Join(root, "swap"))
		os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "swap"))
		_, _, err := f.Open(p9.ReadWrite | p9.OpenFlags(unix.O_TRUNC))
		mustFail(t, "open swapped", err, unix.ELOOP)
		mustFail(t, "truncate swapped", g2.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), unix.ELOOP)
		d := walk(t, r, "d")
		os.Rename(filepath.Join(root, "d"), filepath.Join(root, "d.old"))
		os.Symlink(filepath.Join(outside, "dir"), filepath.Join(root, "d"))
		if _, c, err := d.Walk([]string{"inner"}); err == nil {
			c.Close()
			t.Fatal("held directory fid reached the outside directory")
		}
		if _, err := d.Mkdir("made", 0o755, p9.NoUID, p9.NoGID); err != nil {
			t.Fatalf("mkdir in held dir: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "d.old", "made")); err != nil {
			t.Fatalf("mkdir landed elsewhere: %v", err)
		}
	})
	t.Run("device node cannot be opened", func(t *testing.T) {
		for _, mode := range []p9.OpenFlags{p9.ReadOnly, p9.WriteOnly} {
			_, _, err := walk(t, r, "null").Open(mode)
			mustFail(t, "open device", err, unix.EACCES, unix.EINVAL, unix.EPERM)
		}
		_, err := r.Mknod("mydev", p9.ModeCharacterDevice|0o666, 1, 3, p9.NoUID, p9.NoGID)
		mustFail(t, "mknod device", err, unix.EPERM)
	})
	for _, w := range watch {
		if after := hostState(t, w); !reflect.DeepEqual(before[w], after) {
			t.Fatalf("host files outside the tree changed under %s:\nbefore %v\nafter  %v", w, before[w], after)
		}
	}
}

func TestGoferReadOnlyTree(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "f"), []byte("keep"), 0o644)
	g := startGofer(t, gofer.Tree{Source: rw}, gofer.Tree{Source: ro, ReadOnly: true})
	if _, err := g.roots[0].Mkdir("ok", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatalf("rw tree: %v", err)
	}
	r := g.roots[1]
	_, err := r.Mkdir("no", 0o755, p9.NoUID, p9.NoGID)
	mustFail(t, "mkdir in ro tree", err, unix.EROFS)
	_, _, err = walk(t, r, "f").Open(p9.WriteOnly)
	mustFail(t, "open for write in ro tree", err, unix.EROFS)
	mustFail(t, "truncate in ro tree", walk(t, r, "f").SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), unix.EROFS)
	mustFail(t, "unlink in ro tree", r.UnlinkAt("f", 0), unix.EROFS)
	if b, _ := os.ReadFile(filepath.Join(ro, "f")); string(b) != "keep" {
		t.Fatalf("ro file changed: %q", b)
	}
	// The mount inside the gofer is read-only as well.
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/1" {
			found = true
			if !strings.Contains(","+f[5]+",", ",ro,") {
				t.Fatalf("read-only tree mounted %s in the gofer", f[5])
			}
		}
	}
	if !found {
		t.Fatalf("no /1 mount in gofer mountinfo:\n%s", mi)
	}
}

// procStatus returns the fields of /proc/pid/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// goferFileCaps are the capabilities a gofer keeps (as a mask): those
// that act on files of any owner. Not CAP_MKNOD: it makes no device.
const goferFileCaps uint64 = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_FOWNER | 1<<unix.CAP_FSETID | 1<<unix.CAP_SETFCAP

func TestGoferConfinement(t *testing.T) {
	dir, file := t.TempDir(), filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(file, []byte("nameserver 10.0.0.1\n"), 0o644)
	g := startGofer(t, gofer.Tree{Source: dir}, gofer.Tree{Source: file, ReadOnly: true})
	pid := g.cmd.Process.Pid

	t.Run("root holds only the served trees", func(t *testing.T) {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		if !reflect.DeepEqual(names, []string{"0", "1"}) {
			t.Fatalf("gofer root holds %v, want only the trees [0 1]", names)
		}
		mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatal(err)
		}
		var points []string
		for _, line := range strings.Split(strings.TrimSpace(string(mi)), "\n") {
			points = append(points, strings.Fields(line)[4])
		}
		if !reflect.DeepEqual(points, []string{"/", "/0", "/1"}) {
			t.Fatalf("gofer mounts %v, want [/ /0 /1]:\n%s", points, mi)
		}
	})
	t.Run("capabilities", func(t *testing.T) {
		st := procStatus(t, pid)
		want := goferFileCaps
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
			got, err := strconv.ParseUint(st[k], 16, 64)
			if err != nil {
				t.Fatalf("%s: %q", k, st[k])
			}
			if got != want {
				t.Errorf("%s = %#x, want %#x (file capabilities only)", k, got, want)
			}
		}
		if st["CapInh"] != "0000000000000000" || st["CapAmb"] != "0000000000000000" {
			t.Errorf("CapInh %s CapAmb %s, want none", st["CapInh"], st["CapAmb"])
		}
	})
	t.Run("seccomp", func(t *testing.T) {
		st := procStatus(t, pid)
		if st["Seccomp"] != "2" {
			t.Fatalf("Seccomp: %q, want 2 (filter)", st["Seccomp"])
		}
		if st["NoNewPrivs"] != "1" {
			t.Fatalf("NoNewPrivs: %q, want 1", st["NoNewPrivs"])
		}
		// Every thread has the filter.
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
			if err == nil && !strings.Contains(string(b), "Seccomp:\t2") {
				t.Fatalf("thread %s has no seccomp filter", task.Name())
			}
		}
	})
	t.Run("namespaces", func(t *testing.T) {
		for _, ns := range []string{"mnt", "pid", "ipc", "uts", "net"} {
			mine, _ := os.Readlink("/proc/self/ns/" + ns)
			theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			if err != nil {
				t.Fatal(err)
			}
			if mine == theirs {
				t.Errorf("gofer shares the %s namespace (%s)", ns, mine)
			}
		}
	})
	t.Run("single file tree", func(t *testing.T) {
		c := walk(t, g.roots[1])
		if _, _, err := c.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c); got != "nameserver 10.0.0.1\n" {
			t.Fatalf("read %q", got)
		}
	})
}

func TestGoferExitsWhenConnectionsClose(t *testing.T) {
	g := startGofer(t, gofer.Tree{Source: t.TempDir()}, gofer.Tree{Source: t.TempDir()})
	g.clients[0].Close()
	select {
	case err := <-g.done:
		t.Fatalf("gofer exited with one connection still open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	g.close()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("gofer exit: %v", err)
		}
		g.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("gofer still running after all connections closed")
	}
}

func TestGoferStartedByHand(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	mine, theirs := testhelp.SocketPair(t)
	cmd := exec.Command(runscBin, "gofer", "--tree=rw:"+dir, "--io-fds=3")
	cmd.ExtraFiles = []*os.File{theirs}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	client, root := attach(t, mine)
	if _, err := root.Mkdir("by-hand", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "by-hand")); err != nil {
		t.Fatal(err)
	}
	root.Close()
	client.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gofer: %v: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gofer did not exit")
	}
}

func TestGoferBadFlags(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gofer"}, "--tree"},
		{[]string{"gofer", "--tree=" + dir, "--io-fds=3"}, "--tree"},
		{[]string{"gofer", "--tree=rw:relative", "--io-fds=3"}, "absolute"},
		{[]string{"gofer", "--tree=rw:" + dir, "--io-fds=x"}, "--io-fds"},
		{[]string{"gofer", "--tree=rw:" + dir}, "--io-fds"},
		{[]string{"gofer", "--tree=rw:" + dir, "--io-fds=3,4"}, "--io-fds"},
		{[]string{"gofer", "--tree=rw:" + dir, "--io-fds=1"}, "--io-fds"},
		{[]string{"gofer", "--tree=rw:" + dir, "--io-fds=3"}, "--io-fds"}, // fd 3 not open
		{[]string{"gofer", "--tree=rw:/nonexistent/x", "--io-fds=3"}, "/nonexistent/x"},
		{[]string{"--log-format=xml", "gofer"}, "--log-format"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cmd := exec.Command(runscBin, c.args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if strings.Contains(c.want, "nonexistent") {
				_, theirs := testhelp.SocketPair(t)
				cmd.ExtraFiles = []*os.File{theirs}
			}
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero status", err)
			}
			msg := strings.TrimSpace(stderr.String())
			if !strings.Contains(msg, c.want) {
				t.Fatalf("stderr %q does not name %q", msg, c.want)
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
				t.Fatalf("stderr looks like a crash: %q", msg)
			}
		})
	}
}
