package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// mergedUsrImage returns a merged-/usr image made from the busybox
// rootfs: busybox and its applet links in /usr/bin, /bin and /sbin links
// to it, /etc and /var directories.
func mergedUsrImage(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	src := busyboxRootfs(t)
	// No /proc, /sys, /dev, /tmp: the mount points are made in the
	// sandbox, never in the image.
	for _, d := range []string{"usr", "etc", "var"} {
		if err := os.MkdirAll(filepath.Join(img, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(src, "bin"), filepath.Join(img, "usr", "bin")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/bin"} {
		if err := os.Symlink(target, filepath.Join(img, name)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(img, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644)
	return img
}

// probeScript writes a file in /, /etc, /var and /usr, making the
// directory first where it is missing, and prints rw or ro for each;
// then, from mountinfo, the file system type of /, /usr and /var, and
// whether each is mounted read-only and nodev.
const probeScript = `for d in / /etc /var /usr; do mkdir -p $d 2>/dev/null; if touch $d/probe 2>/dev/null; then echo "$d rw"; else echo "$d ro"; fi; done
awk '{ for (i = 7; $i != "-"; i++); if ($5 == "/" || $5 == "/usr" || $5 == "/var") print $5, $(i+1), substr($6, 1, 2), ($6 ~ /nodev/ ? "nodev" : "dev") }' /proc/self/mountinfo`

// tree lists every path under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		out = append(out, p)
		return nil
	})
	return out
}

// TestVolatileModes runs each --volatile mode over a merged-/usr image
// with runsc do: what is writable, what the container sees mounted,
// and that nothing it wrote reaches the image.
func TestVolatileModes(t *testing.T) {
	e := newEnv(t)
	img := mergedUsrImage(t)
	for _, c := range []struct {
		mode, overlay2, want string
	}{
		// do's default: the image under a memory overlay.
		{"no", "", "/ rw\n/etc rw\n/var rw\n/usr rw\n/ overlay rw nodev\n"},
		// Read-only, and still nothing made in the image.
		{"no", "none", "/ ro\n/etc ro\n/var ro\n/usr ro\n/ overlay ro nodev\n"},
		{"overlay", "none", "/ rw\n/etc rw\n/var rw\n/usr rw\n/ overlay rw nodev\n"},
		{"state", "", "/ ro\n/etc ro\n/var rw\n/usr ro\n/ overlay ro nodev\n/var tmpfs rw nodev\n"},
		{"yes", "", "/ rw\n/etc rw\n/var rw\n/usr ro\n/ tmpfs rw nodev\n/usr fuse.runsc ro nodev\n"},
	} {
		t.Run(c.mode+"/overlay2="+c.overlay2, func(t *testing.T) {
			defer e.sub(t)()
			before := tree(t, img)
			args := []string{"do", "--volatile=" + c.mode, "--root-dir", img, "--", "sh", "-c", probeScript}
			if c.overlay2 != "" {
				args = append([]string{"--overlay2=" + c.overlay2}, args...)
			}
			r := e.exec("", args...)
			if r.code != 0 || r.stdout != c.want {
				t.Fatalf("exit %d, stdout:\n%s\nstderr %q; want:\n%s", r.code, r.stdout, r.stderr, c.want)
			}
			if after := tree(t, img); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("the image changed:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}
}

// TestVolatileAcceptance is the issue's: --volatile=state over the
// host's root makes /var/x in a tmpfs and refuses /etc/x.
func TestVolatileAcceptance(t *testing.T) {
	e := newEnv(t)
	r := e.exec("", "do", "--volatile=state", "--", "sh", "-c", "touch /var/runsc-volatile-x && echo var ok; touch /etc/runsc-volatile-x")
	if r.code == 0 || r.stdout != "var ok\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, p := range []string{"/var/runsc-volatile-x", "/etc/runsc-volatile-x"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s reached the host: %v", p, err)
		}
	}
}

// TestVolatileAnnotation asks for a mode per container, on a bundle
// whose root is otherwise written through.
func TestVolatileAnnotation(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "touch /var/from-state && echo var ok; touch /etc/from-state")
	spec.Annotations = map[string]string{specutils.VolatileAnnotation: "state"}
	b := newBundle(t, spec)
	r := e.exec("", "run", "--bundle", b.dir, "vol-state")
	if r.stdout != "var ok\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, p := range []string{"var/from-state", "etc/from-state"} {
		if _, err := os.Lstat(filepath.Join(b.rootfs, p)); !os.IsNotExist(err) {
			t.Errorf("%s reached the bundle's root: %v", p, err)
		}
	}
	spec.Annotations[specutils.VolatileAnnotation] = "sometimes"
	b.writeSpec(t, spec)
	wantOneLineError(t, e.exec("", "run", "--bundle", b.dir, "vol-bad"), `annotation dev.runsc.volatile "sometimes": want no, yes, state or overlay`)
	// A global --volatile=yes on an image that is not merged-/usr.
	spec.Annotations = nil
	b.writeSpec(t, spec)
	wantOneLineError(t, newEnv(t, "--volatile=yes").exec("", "run", "--bundle", b.dir, "vol-yes"), "--volatile yes: the image is not merged-/usr: /bin is not a symlink into /usr")
}

// TestDoService runs a small service as osctl's exportfs servers run: an
// empty tmpfs root holding only what is bound in, serving files from a
// bound directory, with the process settings from do's flags.
func TestDoService(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "export.txt"), []byte("exported\n"), 0o644)
	// A mount under the bound directory: :ro reaches it too.
	sub := filepath.Join(data, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	bin := filepath.Join(busyboxRootfs(t), "bin")
	script := `httpd -p 127.0.0.1:8080 -h /srv && wget -qO- http://127.0.0.1:8080/export.txt
echo "$GREETING $(id -u):$(id -g) $(hostname) $(pwd)"
touch /srv/x 2>/dev/null || echo srv ro
touch /srv/sub/x 2>/dev/null || echo srv/sub ro
ls / | tr '\n' ' '; echo
awk '$5 != "/" && $5 !~ "^/(proc|dev|sys)" { print $5 }' /proc/self/mountinfo | tr '\n' ' '`
	r := e.exec("", "do", "--volatile=yes", "--bind", bin+":/bin:ro", "--bind", data+":/srv:ro", "--tmpfs", "/run:size=1m,mode=0700",
		"--env", "GREETING=hello", "--user", "1000:1001", "--hostname", "exportfs", "--cwd", "/run", "--", "/bin/sh", "-c", script)
	want := "exported\nhello 1000:1001 exportfs /run\nsrv ro\nsrv/sub ro\nbin dev proc run srv sys tmp \n/tmp /bin /srv /run "
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, stdout:\n%s\nstderr %q; want:\n%s", r.code, r.stdout, r.stderr, want)
	}
	if _, err := os.Stat(filepath.Join(sub, "x")); !os.IsNotExist(err) {
		t.Errorf("a write under the read-only bind reached the host: %v", err)
	}
	// The host's /usr alone, in an empty root: the merged-/usr links
	// let its dynamically linked programs run.
	r = e.exec("", "do", "--volatile=yes", "--bind", "/usr:/usr:ro", "--", "/bin/sh", "-c", "echo from the host /usr; ls /")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "from the host /usr\n") || !strings.Contains(r.stdout, "lib64") {
		t.Errorf("host /usr in an empty root: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestDoBadInput: do's flags get one-line errors and leave nothing.
func TestDoBadInput(t *testing.T) {
	e := newEnv(t)
	noUsr := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bind", "/tmp"}, `do: --bind "/tmp": want SRC:DST[:ro]`},
		{[]string{"--bind", "/tmp:relative"}, `do: --bind "/tmp:relative": DST "relative" must be absolute`},
		{[]string{"--bind", "/tmp:/x:rx"}, `do: --bind "/tmp:/x:rx": option "rx": want ro or rw`},
		{[]string{"--tmpfs", "run"}, `do: --tmpfs "run": DST "run" must be absolute`},
		{[]string{"--volatile=sometimes"}, `do: --volatile "sometimes": want no, yes, state or overlay`},
		{[]string{"--volatile=yes", "--root-dir", noUsr}, "--volatile yes: the image has no /usr directory"},
		{[]string{"--env", "NOVALUE"}, `do: --env "NOVALUE": want K=V`},
		{[]string{"--user", "nobody"}, `do: --user "nobody": want numeric UID[:GID]`},
		{[]string{"--address", "169.254.77.2/32"}, "do: --veth-host and --address need --network=veth"},
		{[]string{"--network=veth", "--veth-host", "a-name-longer-than-15"}, `do: --veth-host: "a-name-longer-than-15" is longer than 15 bytes`},
		{[]string{"--network=veth", "--address", "169.254.0.1/32"}, `--address "169.254.0.1/32": 169.254.0.1 is the sandbox's gateway`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			defer e.sub(t)()
			wantOneLineError(t, e.exec("", append(append([]string{"do"}, c.args...), "--", "true")...), c.want)
			if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "" {
				t.Errorf("containers left: %q", out)
			}
		})
	}
}
