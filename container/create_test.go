package container

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/gofer"
)

func TestGoferTrees(t *testing.T) {
	dir := t.TempDir()
	a, b, f := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "resolv.conf")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	os.WriteFile(f, nil, 0o644)
	bind := func(src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: opts}
	}
	tmpfs := specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro"}}
	rootRW := gofer.Tree{Source: "/bundle/rootfs"}
	rootRO := gofer.Tree{Source: "/bundle/rootfs", ReadOnly: true}

	for _, c := range []struct {
		name       string
		readonly   bool
		overlay    string
		mounts     []specs.Mount
		shared     map[string]int
		want       []gofer.Tree
		wantReuse  map[int]int
		errText    string
		errMention string
	}{
		{name: "root only, write-through", overlay: boot.OverlayNone, want: []gofer.Tree{rootRW}},
		{name: "root only, memory overlay is read-only", overlay: boot.OverlayMemory, want: []gofer.Tree{rootRO}},
		{name: "read-only root", readonly: true, overlay: boot.OverlayNone, want: []gofer.Tree{rootRO}},
		{name: "bind options", overlay: boot.OverlayNone,
			mounts: []specs.Mount{tmpfs, bind(a, "ro"), bind(b, "rbind", "rw"), bind(f), {Destination: "/x", Type: "none", Source: a, Options: []string{"rbind", "ro"}}, bind(b, "rbind", "rro")},
			// ro on an rbind is the top mount's only (runc); rro all.
			want: []gofer.Tree{rootRW, {Source: a, ReadOnly: true}, {Source: b, Recursive: true}, {Source: f}, {Source: a, TopReadOnly: true, Recursive: true}, {Source: b, ReadOnly: true, Recursive: true}}},
		{name: "last of ro and rw wins", overlay: boot.OverlayNone,
			mounts: []specs.Mount{bind(a, "ro", "rw"), bind(b, "rw", "ro")},
			want:   []gofer.Tree{rootRW, {Source: a}, {Source: b, ReadOnly: true}}},
		{name: "bind is not made read-only by the overlay", overlay: boot.OverlayMemory,
			mounts: []specs.Mount{bind(a)},
			want:   []gofer.Tree{rootRO, {Source: a}}},
		{name: "shared sources reused, ordinals counted", overlay: boot.OverlayNone,
			mounts:    []specs.Mount{bind(a), tmpfs, bind(b + "/"), bind(f, "ro")},
			shared:    map[string]int{bindKey(bind(b)): 4, bindKey(bind("/elsewhere")): 1, bindKey(bind(f)): 3},
			want:      []gofer.Tree{rootRW, {Source: a}, {Source: f, ReadOnly: true}},
			wantReuse: map[int]int{2: 4}},
		{name: "relative source refused", overlay: boot.OverlayNone,
			mounts:  []specs.Mount{tmpfs, bind(a), bind("rel/dir")},
			errText: "absolute", errMention: "mounts[2]"},
		{name: "missing source refused", overlay: boot.OverlayNone,
			mounts:  []specs.Mount{bind(filepath.Join(dir, "missing"))},
			errText: "no such file", errMention: "mounts[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &specs.Spec{Root: &specs.Root{Path: "/bundle/rootfs", Readonly: c.readonly}, Mounts: c.mounts}
			trees, reuse, err := goferTrees(spec, c.overlay, c.shared)
			if c.errText != "" {
				if err == nil {
					t.Fatalf("goferTrees = %+v, want an error", trees)
				}
				for _, w := range []string{c.errText, c.errMention, "config.json"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(trees, c.want) {
				t.Errorf("trees = %+v\nwant    %+v", trees, c.want)
			}
			if c.wantReuse == nil {
				c.wantReuse = map[int]int{}
			}
			if !reflect.DeepEqual(reuse, c.wantReuse) {
				t.Errorf("reuse = %v, want %v", reuse, c.wantReuse)
			}
		})
	}
}

func TestBindSources(t *testing.T) {
	m := func(typ, src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: "/d", Type: typ, Source: src, Options: opts}
	}
	for _, c := range []struct {
		name   string
		mounts []specs.Mount
		want   map[string]int
	}{
		{"none", nil, map[string]int{}},
		{"only binds count", []specs.Mount{m("proc", "proc"), m("bind", "/a"), m("tmpfs", "tmpfs"), m("none", "/b", "rbind")},
			map[string]int{bindKey(m("bind", "/a")): 1, bindKey(m("none", "/b", "rbind")): 2}},
		{"first ordinal of a repeated source", []specs.Mount{m("bind", "/a"), m("bind", "/b"), m("bind", "/a/")},
			map[string]int{bindKey(m("bind", "/a")): 1, bindKey(m("bind", "/b")): 2}},
		{"sources cleaned", []specs.Mount{m("bind", "/x/../a//b/")}, map[string]int{bindKey(m("bind", "/a/b")): 1}},
		// A read-only bind of a source never shares a writable one's
		// tree (nor an rbind a bind's).
		{"modes kept apart", []specs.Mount{m("bind", "/a"), m("bind", "/a", "ro"), m("bind", "/a", "rbind", "ro"), m("bind", "/a", "rbind")},
			map[string]int{bindKey(m("bind", "/a")): 1, bindKey(m("bind", "/a", "ro")): 2, bindKey(m("bind", "/a", "rbind", "ro")): 3, bindKey(m("bind", "/a", "rbind")): 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := bindSources(&specs.Spec{Mounts: c.mounts}); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("bindSources = %v, want %v", got, c.want)
			}
		})
	}
	t.Run("agrees with goferTrees", func(t *testing.T) {
		// A member whose binds are all the sandbox container's reuses
		// every one of them at the same ordinal.
		dir := t.TempDir()
		var mounts []specs.Mount
		for i := range 3 {
			src := filepath.Join(dir, strconv.Itoa(i))
			os.Mkdir(src, 0o755)
			mounts = append(mounts, m("bind", src), m("tmpfs", "tmpfs"))
		}
		spec := &specs.Spec{Root: &specs.Root{Path: "/r"}, Mounts: mounts}
		trees, reuse, err := goferTrees(spec, boot.OverlayNone, bindSources(spec))
		if err != nil {
			t.Fatal(err)
		}
		if len(trees) != 1 || !reflect.DeepEqual(reuse, map[int]int{1: 1, 2: 2, 3: 3}) {
			t.Fatalf("trees %+v reuse %v: want only the root served and every bind reused at its ordinal", trees, reuse)
		}
	})
}

func TestSpecNetNS(t *testing.T) {
	for _, c := range []struct {
		name  string
		linux *specs.Linux
		path  string
		own   bool
	}{
		{"no linux section", nil, "", false},
		{"no network namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}, "", false},
		{"new network namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}}}, "", true},
		{"joined network namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}}}, "/var/run/netns/x", true},
		{"other namespace paths ignored", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/1/ns/uts"}}}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, own := specNetNS(&specs.Spec{Linux: c.linux})
			if path != c.path || own != c.own {
				t.Fatalf("specNetNS = %q, %v; want %q, %v", path, own, c.path, c.own)
			}
		})
	}
}

func TestWritePIDFile(t *testing.T) {
	// entries lists dir.
	entries := func(t *testing.T, dir string) []string {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	t.Run("new file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "pid")
		if err := WritePIDFile(p, 4242); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "4242" {
			t.Fatalf("pid file holds %q, %v; want 4242", b, err)
		}
		fi, _ := os.Lstat(p)
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Fatalf("pid file mode %v, want a regular file 0644", fi.Mode())
		}
		if got := entries(t, dir); !reflect.DeepEqual(got, []string{"pid"}) {
			t.Fatalf("directory holds %v, want only the pid file", got)
		}
	})
	t.Run("replaces an existing file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "pid")
		os.WriteFile(p, []byte("999999 and more"), 0o600)
		if err := WritePIDFile(p, 7); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "7" {
			t.Fatalf("pid file holds %q, want 7", b)
		}
	})
	t.Run("replaces a symlink instead of following it", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		os.WriteFile(target, []byte("precious"), 0o600)
		p := filepath.Join(dir, "pid")
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := WritePIDFile(p, 11); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(target); string(b) != "precious" {
			t.Fatalf("the link's target now holds %q", b)
		}
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			t.Fatalf("pid file: %v, %v; want a regular file in place of the link", fi.Mode(), err)
		}
		if b, _ := os.ReadFile(p); string(b) != "11" {
			t.Fatalf("pid file holds %q", b)
		}
	})
	t.Run("dangling symlink replaced, target not made", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "made-through-link")
		p := filepath.Join(dir, "pid")
		os.Symlink(target, p)
		if err := WritePIDFile(p, 12); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(target); !os.IsNotExist(err) {
			t.Fatalf("the link's target was made: %v", err)
		}
	})
	t.Run("failure leaves no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "pid")
		// A non-empty directory in the way: the rename fails.
		os.MkdirAll(filepath.Join(p, "inside"), 0o755)
		err := WritePIDFile(p, 13)
		if err == nil || !strings.Contains(err.Error(), "--pid-file "+p) {
			t.Fatalf("WritePIDFile over a directory: %v, want an error naming --pid-file", err)
		}
		if got := entries(t, dir); !reflect.DeepEqual(got, []string{"pid"}) {
			t.Fatalf("directory holds %v after a failure, want only what was there", got)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "no", "pid")
		if err := WritePIDFile(p, 14); err == nil || !strings.Contains(err.Error(), "--pid-file") {
			t.Fatalf("WritePIDFile in a missing directory: %v", err)
		}
	})
	t.Run("readers never see a partial file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "pid")
		if err := WritePIDFile(p, 100000); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pid := 100001; ; pid++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := WritePIDFile(p, pid); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for range 2000 {
			b, err := os.ReadFile(p)
			if n, perr := strconv.Atoi(string(b)); err != nil || perr != nil || n < 100000 {
				close(stop)
				wg.Wait()
				t.Fatalf("reader saw %q, %v", b, err)
			}
		}
		close(stop)
		wg.Wait()
		if got := entries(t, dir); !reflect.DeepEqual(got, []string{"pid"}) {
			t.Fatalf("directory holds %v, want only the pid file", got)
		}
	})
}
