package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestDoMounts(t *testing.T) {
	src := t.TempDir()
	var d doMountFlags
	for _, f := range []struct{ kind, v string }{
		{"bind", src + ":/srv/data:ro"}, {"tmpfs", "/srv:size=1m,mode=0755"}, {"bind", src + ":/opt:rw"}, {"tmpfs", "/run"},
	} {
		d.flag(f.kind).Set(f.v)
	}
	mounts, err := d.specMounts()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mounts {
		got = append(got, m.Destination+" "+m.Type+" "+strings.Join(m.Options, ","))
	}
	// Parents first, otherwise in the order given.
	want := []string{"/srv tmpfs nosuid,nodev,size=1m,mode=0755", "/opt bind rbind", "/run tmpfs nosuid,nodev", "/srv/data bind rbind,rro"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts\n%q\nwant\n%q", got, want)
	}
	for _, c := range []struct{ kind, v, want string }{
		{"bind", "/tmp", `do: --bind "/tmp": want SRC:DST[:ro]`},
		{"bind", "a:b:c:d", `do: --bind "a:b:c:d": want SRC:DST[:ro]`},
		{"bind", src + ":/", `DST may not be /`},
		{"bind", "/no/such/dir:/x", `do: --bind "/no/such/dir:/x": SRC: stat /no/such/dir: no such file or directory`},
		{"tmpfs", "/x:bind", `do: --tmpfs "/x:bind": option "bind": not a tmpfs option`},
		{"tmpfs", "/x:size=", `do: --tmpfs "/x:size=": option "size=": not a tmpfs option`},
		{"tmpfs", "/x:", ""},
		{"tmpfs", "x", `do: --tmpfs "x": DST "x" must be absolute`},
	} {
		var one doMountFlags
		one.flag(c.kind).Set(c.v)
		_, err := one.specMounts()
		if c.want == "" {
			if err != nil {
				t.Errorf("--%s %q: %v", c.kind, c.v, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--%s %q: error %v, want %q", c.kind, c.v, err, c.want)
		}
	}
}

func TestParseDoUser(t *testing.T) {
	for in, want := range map[string][2]uint32{"1000": {1000, 0}, "1000:1001": {1000, 1001}, "0:0": {0, 0}} {
		u, err := parseDoUser(in)
		if err != nil || u.UID != want[0] || u.GID != want[1] {
			t.Errorf("parseDoUser(%q) = %+v, %v", in, u, err)
		}
	}
	for _, bad := range []string{"nobody", "1:x", "-1", ""} {
		if _, err := parseDoUser(bad); err == nil {
			t.Errorf("parseDoUser(%q) accepted", bad)
		}
	}
}

func TestDoEnv(t *testing.T) {
	got, err := doEnv([]string{"A=1", "B=2"}, []string{"A=3", "C=4"})
	if err != nil || !reflect.DeepEqual(got, []string{"B=2", "A=3", "C=4"}) {
		t.Errorf("doEnv = %v, %v", got, err)
	}
	if _, err := doEnv(nil, []string{"=x"}); err == nil {
		t.Error("accepted an empty name")
	}
}
