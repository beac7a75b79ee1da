package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// writeFile makes a file with the given mode (not masked by the umask).
func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestIsExecutable(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"all": 0o755, "owner": 0o700, "group only": 0o010, "other only": 0o001, "none": 0o644,
	} {
		writeFile(t, filepath.Join(dir, name), mode)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("all", filepath.Join(dir, "link-to-exe"))
	os.Symlink("none", filepath.Join(dir, "link-to-plain"))
	os.Symlink("missing", filepath.Join(dir, "dangling"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		ok      bool
		errIs   error
		errText string
	}{
		{name: "all", ok: true},
		{name: "owner", ok: true},
		{name: "group only", ok: true},
		{name: "other only", ok: true},
		{name: "link-to-exe", ok: true},
		{name: "none", errIs: unix.EACCES},
		{name: "link-to-plain", errIs: unix.EACCES},
		{name: "dir", errText: "not a regular file"},
		{name: "fifo", errText: "not a regular file"},
		{name: "missing", errIs: os.ErrNotExist},
		{name: "dangling", errIs: os.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := isExecutable(filepath.Join(dir, c.name))
			switch {
			case c.ok:
				if err != nil {
					t.Fatalf("isExecutable: %v, want nil", err)
				}
			case err == nil:
				t.Fatal("isExecutable: nil, want an error")
			case c.errIs != nil && !errors.Is(err, c.errIs):
				t.Fatalf("isExecutable: %v, want %v", err, c.errIs)
			case c.errText != "" && !strings.Contains(err.Error(), c.errText):
				t.Fatalf("isExecutable: %v, want %q", err, c.errText)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	base := t.TempDir()
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	for _, d := range []string{a, b, c, filepath.Join(c, "prog")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(a, "prog"), 0o644) // not executable
	writeFile(t, filepath.Join(b, "prog"), 0o755)
	writeFile(t, filepath.Join(a, "only-a"), 0o755)
	writeFile(t, filepath.Join(b, "plain"), 0o644)

	for _, tc := range []struct {
		name    string
		prog    string
		env     []string
		want    string
		errText string
	}{
		{name: "first executable in PATH order", prog: "prog", env: []string{"PATH=" + a + ":" + b}, want: filepath.Join(b, "prog")},
		{name: "directory of that name skipped", prog: "prog", env: []string{"PATH=" + c + ":" + b}, want: filepath.Join(b, "prog")},
		{name: "earlier dir wins", prog: "only-a", env: []string{"PATH=" + b + ":" + a}, want: filepath.Join(a, "only-a")},
		{name: "missing dirs skipped", prog: "prog", env: []string{"PATH=/nonexistent:" + b}, want: filepath.Join(b, "prog")},
		{name: "other variables ignored", prog: "prog", env: []string{"HOME=" + a, "PATHX=" + a, "MYPATH=" + a, "PATH=" + b}, want: filepath.Join(b, "prog")},
		{name: "not executable anywhere", prog: "plain", env: []string{"PATH=" + a + ":" + b}, errText: "not found in $PATH"},
		{name: "only a directory", prog: "prog", env: []string{"PATH=" + c}, errText: "not found in $PATH"},
		{name: "not found", prog: "nope", env: []string{"PATH=" + a + ":" + b}, errText: `exec "nope"`},
		{name: "PATH not searched for a name with a slash", prog: "b/prog", env: []string{"PATH=" + base}, errText: `exec "b/prog"`},
		{name: "absolute path as given", prog: filepath.Join(b, "prog"), env: []string{"PATH=" + a}, want: filepath.Join(b, "prog")},
		{name: "absolute path not cleaned", prog: b + "/./prog", want: b + "/./prog"},
		{name: "absolute path not executable", prog: filepath.Join(a, "prog"), env: []string{"PATH=" + b}, errText: "permission denied"},
		{name: "absolute path to a directory", prog: filepath.Join(c, "prog"), errText: "not a regular file"},
		{name: "absolute path missing", prog: filepath.Join(a, "nope"), errText: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookPath(tc.prog, tc.env)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("lookPath(%q) = %q, %v; want an error with %q", tc.prog, got, err, tc.errText)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("lookPath(%q) = %q, %v; want %q", tc.prog, got, err, tc.want)
			}
		})
	}

	t.Run("default PATH without one in env", func(t *testing.T) {
		got, err := lookPath("sh", []string{"HOME=/"})
		if err != nil {
			t.Skipf("no sh in the default PATH here: %v", err)
		}
		dir := filepath.Dir(got)
		if !strings.Contains(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:", ":"+dir+":") {
			t.Fatalf("lookPath(sh) = %q, outside the default PATH", got)
		}
		if _, err := lookPath("sh", []string{"PATH=" + a}); err == nil {
			t.Fatal("a PATH in env did not replace the default one")
		}
	})
	t.Run("empty PATH element is the working directory", func(t *testing.T) {
		t.Chdir(b)
		got, err := lookPath("prog", []string{"PATH=" + a + "::/nonexistent"})
		if err != nil || got != "prog" {
			t.Fatalf("lookPath = %q, %v; want prog in the working directory", got, err)
		}
	})
}
