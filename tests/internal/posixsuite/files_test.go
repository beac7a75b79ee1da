package posixsuite

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests below add what posixtest does not cover and databases,
// package managers and build tools rely on. Each runs in a fresh
// subdirectory of DirEnv.

// scratch returns a fresh directory for the test, or skips it.
func scratch(t *testing.T) string {
	t.Helper()
	base := os.Getenv(DirEnv)
	if base == "" {
		t.Skipf("%s is not set", DirEnv)
	}
	dir, err := os.MkdirTemp(base, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLargeSparse writes past 4 GiB in a sparse file, reads it back and
// finds its data and holes with SEEK_DATA and SEEK_HOLE.
func TestLargeSparse(t *testing.T) {
	p := filepath.Join(scratch(t), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off = 5<<30 + 12345
	if _, err := f.WriteAt([]byte("far away"), off); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil || st.Size() != off+8 {
		t.Fatalf("size %v, %v; want %d", st.Size(), err, off+8)
	}
	buf := make([]byte, 8)
	if _, err := f.ReadAt(buf, off); err != nil || string(buf) != "far away" {
		t.Fatalf("read back %q, %v", buf, err)
	}
	if _, err := f.ReadAt(buf, 1<<30); err != nil || !bytes.Equal(buf, make([]byte, 8)) {
		t.Fatalf("hole reads %q, %v; want zeros", buf, err)
	}
	data, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if err != nil || data > off || data < off-1<<20 {
		t.Fatalf("SEEK_DATA from 0: %d, %v; want the block of %d", data, err, off)
	}
	hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil || hole != 0 {
		t.Fatalf("SEEK_HOLE from 0: %d, %v; want 0", hole, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 1<<20 {
		t.Fatalf("%d bytes allocated for one block of data: not sparse", sys.Blocks*512)
	}
	// Punch the data out again: the file keeps its size, reads zeros,
	// and holds no block.
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off&^(1<<20-1), 2<<20); err != nil {
		t.Fatalf("punch hole: %v", err)
	}
	if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, make([]byte, 8)) {
		t.Fatalf("punched range reads %q, %v; want zeros", buf, err)
	}
	var after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &after); err != nil || after.Size != off+8 || after.Blocks != 0 {
		t.Fatalf("after the punch: size %d, %d blocks, %v; want %d and none", after.Size, after.Blocks, err, off+8)
	}
}

// TestManyOpenFiles holds 5,000 files open at once.
func TestManyOpenFiles(t *testing.T) {
	dir := scratch(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 5100 {
		lim.Cur = min(lim.Max, 5100)
		unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < 5100 {
		t.Skipf("RLIMIT_NOFILE %d: too low to hold 5,000 files", lim.Cur)
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range 5000 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%04d", i)))
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		files = append(files, f)
	}
	for i, f := range files {
		if _, err := fmt.Fprintf(f, "%d", i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i, f := range files {
		b := make([]byte, 8)
		n, _ := f.ReadAt(b, 0)
		if string(b[:n]) != fmt.Sprint(i) {
			t.Fatalf("file %d reads %q", i, b[:n])
		}
	}
}

// TestNames creates, lists and stats names with newlines, spaces,
// unicode, and of 255 bytes; a 256-byte name is refused.
func TestNames(t *testing.T) {
	dir := scratch(t)
	names := []string{"with\nnewline", "with space", "ünïcødé-日本", strings.Repeat("x", 255), " lead", "trail ", "-dash", "a\tb"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != len(names) {
		t.Fatalf("listed %d entries (%v), want %d", len(ents), err, len(names))
	}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != n {
			t.Fatalf("read %q: %q, %v", n, b, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, strings.Repeat("y", 256)), nil, 0o644); err == nil {
		t.Fatal("a 256-byte name was accepted")
	}
}

// TestHardLinks checks link counts and that both names are one inode.
func TestHardLinks(t *testing.T) {
	dir := scratch(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	if sa.Ino != sb.Ino || sa.Nlink != 2 || sb.Nlink != 2 {
		t.Fatalf("inodes %d/%d, links %d/%d; want one inode with 2 links", sa.Ino, sb.Ino, sa.Nlink, sb.Nlink)
	}
	if err := os.WriteFile(b, []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "2" {
		t.Fatalf("write through one name, read through the other: %q", got)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b, &sb); err != nil || sb.Nlink != 1 {
		t.Fatalf("after unlink: links %d, %v", sb.Nlink, err)
	}
}

// TestRenames renames over an existing file and directory, across
// directories, and an open file; an unlinked open file is still read.
func TestRenames(t *testing.T) {
	dir := scratch(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("src"), []byte("src"), 0o644)
	os.WriteFile(p("dst"), []byte("dst"), 0o644)
	open, err := os.Open(p("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := os.Rename(p("src"), p("dst")); err != nil {
		t.Fatalf("rename over a file: %v", err)
	}
	if b, _ := os.ReadFile(p("dst")); string(b) != "src" {
		t.Fatalf("after rename over: %q", b)
	}
	os.Mkdir(p("d1"), 0o755)
	os.Mkdir(p("d2"), 0o755)
	os.WriteFile(p("d1/f"), []byte("in d1"), 0o644)
	// rename(2) itself: os.Rename refuses any existing directory.
	if err := unix.Rename(p("d1"), p("d2")); err != nil {
		t.Fatalf("rename a directory over an empty one: %v", err)
	}
	if b, _ := os.ReadFile(p("d2/f")); string(b) != "in d1" {
		t.Fatalf("after directory rename: %q", b)
	}
	os.Mkdir(p("d3"), 0o755)
	if err := os.Rename(p("dst"), p("d3/moved")); err != nil {
		t.Fatalf("rename across directories: %v", err)
	}
	b := make([]byte, 3)
	if _, err := open.ReadAt(b, 0); err != nil || string(b) != "src" {
		t.Fatalf("the open file after two renames: %q, %v", b, err)
	}
	if err := os.Remove(p("d3/moved")); err != nil {
		t.Fatal(err)
	}
	if _, err := open.ReadAt(b, 0); err != nil || string(b) != "src" {
		t.Fatalf("the open file after unlink: %q, %v", b, err)
	}
	os.Mkdir(p("full"), 0o755)
	os.WriteFile(p("full/x"), nil, 0o644)
	if err := unix.Rename(p("d2"), p("full")); err != unix.ENOTEMPTY && err != unix.EEXIST {
		t.Fatalf("rename over a non-empty directory: %v, want ENOTEMPTY", err)
	}
}

// TestSharedMmap writes through a MAP_SHARED mapping and reads the bytes
// with read(2) on another descriptor, after msync.
func TestSharedMmap(t *testing.T) {
	p := filepath.Join(scratch(t), "mapped")
	if err := os.WriteFile(p, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	copy(m[4096:], "mapped write")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	b := make([]byte, 12)
	if _, err := g.ReadAt(b, 4096); err != nil || string(b) != "mapped write" {
		t.Fatalf("read after msync: %q, %v", b, err)
	}
}

// TestLocks takes flock and open file description (fcntl) locks on two
// descriptors of one file: the second is refused while the first holds.
func TestLocks(t *testing.T) {
	p := filepath.Join(scratch(t), "lock")
	os.WriteFile(p, []byte("x"), 0o644)
	a, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := unix.Flock(int(a.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	if err := unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Fatalf("second flock: %v, want EWOULDBLOCK", err)
	}
	unix.Flock(int(a.Fd()), unix.LOCK_UN)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(a.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatalf("fcntl lock: %v", err)
	}
	lk2 := lk
	if err := unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLK, &lk2); err != unix.EAGAIN {
		t.Fatalf("second fcntl lock: %v, want EAGAIN", err)
	}
}

// TestFsyncs syncs through every call a database uses.
func TestFsyncs(t *testing.T) {
	p := filepath.Join(scratch(t), "synced")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_SYNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatalf("fdatasync: %v", err)
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of the directory: %v", err)
	}
}

// Lock helpers for tests/posix_test.go's TestLocksAcrossContainers, run
// only when their variable names a file: TestLockHold takes a flock, an
// open file description lock and a POSIX process lock, then writes
// LOCKFILE.held and sleeps;
// TestLockProbe expects both refused; TestLockFree expects both granted.
const (
	holdEnv  = "POSIXSUITE_LOCK_HOLD"
	probeEnv = "POSIXSUITE_LOCK_PROBE"
	freeEnv  = "POSIXSUITE_LOCK_FREE"
)

// lockAll tries a non-blocking exclusive flock, an OFD write lock on
// byte 0 and a POSIX (process) write lock on byte 1 of p, and returns
// each one's error.
func lockAll(t *testing.T, p string) (*os.File, [3]error) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ferr := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 1}
	oerr := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	plk := unix.Flock_t{Type: unix.F_WRLCK, Start: 1, Len: 1}
	perr := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &plk)
	return f, [3]error{ferr, oerr, perr}
}

func TestLockHold(t *testing.T) {
	p := os.Getenv(holdEnv)
	if p == "" {
		t.Skipf("%s is not set", holdEnv)
	}
	f, errs := lockAll(t, p)
	defer f.Close()
	if errs != [3]error{} {
		t.Fatalf("locks (flock, OFD, POSIX): %v", errs)
	}
	if err := os.WriteFile(p+".held", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		unix.Pause()
	}
}

func TestLockProbe(t *testing.T) {
	p := os.Getenv(probeEnv)
	if p == "" {
		t.Skipf("%s is not set", probeEnv)
	}
	f, errs := lockAll(t, p)
	defer f.Close()
	if errs != [3]error{unix.EWOULDBLOCK, unix.EAGAIN, unix.EAGAIN} {
		t.Fatalf("locks held elsewhere (flock, OFD, POSIX): %v, want EWOULDBLOCK, EAGAIN, EAGAIN", errs)
	}
}

func TestLockFree(t *testing.T) {
	p := os.Getenv(freeEnv)
	if p == "" {
		t.Skipf("%s is not set", freeEnv)
	}
	f, errs := lockAll(t, p)
	defer f.Close()
	if errs != [3]error{} {
		t.Fatalf("locks nobody holds (flock, OFD, POSIX): %v", errs)
	}
}

// TestTmpfileLinked makes an unnamed file (O_TMPFILE), writes it and
// links it into place through /proc/self/fd, as installers and
// databases do to publish a file whole.
func TestTmpfileLinked(t *testing.T) {
	dir := scratch(t)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o640)
	if err != nil {
		t.Fatalf("O_TMPFILE: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "published")
	if err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, dest, unix.AT_SYMLINK_FOLLOW); err != nil {
		t.Fatalf("linking the unnamed file into place: %v", err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "whole" {
		t.Fatalf("published file: %q, %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Nlink != 1 || st.Mode&0o777 != 0o640 {
		t.Fatalf("after link: nlink %d, mode %o, %v; want 1 and 640", st.Nlink, st.Mode&0o777, err)
	}
}

// TestShowCaps, a helper for tests/posix_test.go's TestFileCapabilities,
// prints the security.capability attribute of the file its variable
// names, as getcap reads it: "caps <revision> <permitted>".
func TestShowCaps(t *testing.T) {
	p := os.Getenv("POSIXSUITE_SHOW_CAPS")
	if p == "" {
		t.Skip("POSIXSUITE_SHOW_CAPS is not set")
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "security.capability", buf)
	if err != nil || n < 12 {
		t.Fatalf("security.capability of %s: %d bytes, %v", p, n, err)
	}
	magic := uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24
	perm := uint32(buf[4]) | uint32(buf[5])<<8 | uint32(buf[6])<<16 | uint32(buf[7])<<24
	fmt.Printf("caps %d %#x\n", magic>>24, perm)
}
