package procfs

import (
	"os"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want Stat
		bad  bool
	}{
		{name: "plain", in: "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 2000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: Stat{Comm: "sleep", State: 'S', PPID: 1, StartTime: 12345}},
		{name: "comm with parens and spaces", in: "7 (a) b (c) Z 3 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99" + strings.Repeat(" 0", 29) + " 256\n",
			want: Stat{Comm: "a) b (c", State: 'Z', PPID: 3, StartTime: 99, ExitCode: 256}},
		{name: "old kernel without exit code", in: "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
			want: Stat{Comm: "init", State: 'S', StartTime: 5}},
		{name: "no parens", in: "1 init S 0", bad: true},
		{name: "short", in: "1 (x) S 0 1", bad: true},
		{name: "bad ppid", in: "1 (x) S p 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", bad: true},
		{name: "empty", in: "", bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStat([]byte(c.in))
			if c.bad {
				if err == nil {
					t.Fatalf("parsed %q as %+v", c.in, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.StartTime == 0 || st.Zombie() {
		t.Fatalf("own stat: %+v", st)
	}
}

func TestParseNSpid(t *testing.T) {
	got, err := ParseNSpid([]byte("Name:\tsh\nNSpid:\t100\t7\t1\nNStgid:\t100\n"))
	if err != nil || len(got) != 3 || got[0] != 100 || got[2] != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"Name: x\n", "NSpid:\n", "NSpid:\t1\tx\n", "NSpid:\t-3\n"} {
		if got, err := ParseNSpid([]byte(bad)); err == nil {
			t.Errorf("parsed %q as %v", bad, got)
		}
	}
}

func TestFDInfoPid(t *testing.T) {
	got, err := FDInfoPid([]byte("pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\nPid:\t-1\nNSpid:\t-1\n"))
	if err != nil || got != -1 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := FDInfoPid([]byte("pos:\t0\n")); err == nil {
		t.Fatal("no Pid line accepted")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 2000 100\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStat(data)
		if err == nil && st.State == 0 {
			t.Fatalf("parsed %q without a state", data)
		}
	})
}

func TestParseMountinfo(t *testing.T) {
	data := []byte("22 27 0:21 / /proc rw,relatime - proc proc rw\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
		"40 27 0:50 / /a\\040b rw shared:1 - fuse.runsc runsc-9p rw,user_id=0\n" +
		"612 30 0:4 net:[4026532311] /run/netns/x rw shared:5 - nsfs nsfs rw\n" +
		"garbage\n")
	got := ParseMountinfo(data)
	if len(got) != 4 {
		t.Fatalf("parsed %d mounts: %+v", len(got), got)
	}
	if got[1].FSType != "cgroup" || got[1].Super != "rw,cpu" || got[1].Point != "/sys/fs/cgroup/cpu" {
		t.Errorf("cgroup line: %+v", got[1])
	}
	if got[2].Point != "/a b" || got[2].FSType != "fuse.runsc" || got[2].MajorMinor != "0:50" || got[2].Source != "runsc-9p" {
		t.Errorf("fuse line: %+v", got[2])
	}
	if got[3].ID != 612 || got[3].Root != "net:[4026532311]" || got[3].FSType != "nsfs" || len(got[3].Optional) != 1 || got[3].Optional[0] != "shared:5" {
		t.Errorf("nsfs line: %+v", got[3])
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("22 27 0:21 / /proc rw,relatime - proc proc rw\n40 27 0:50 / /a\\040b rw shared:1 - fuse.runsc runsc-9p rw,user_id=0\n"))
	f.Add([]byte("1 2 3 4 \\0 \\1 - a b c\n- - - - - -\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range ParseMountinfo(data) {
			if m.FSType == "" || m.Source == "" || m.Super == "" || m.MajorMinor == "" {
				t.Fatalf("parsed an incomplete mount %+v from %q", m, data)
			}
		}
	})
}

func TestPendingSignals(t *testing.T) {
	status := "Name:\tsleep\nSigQ:\t0/31234\nSigPnd:\t0000000000000100\nShdPnd:\t0000000000000002\nSigBlk:\t0000000000000000\n"
	got, err := PendingSignals([]byte(status))
	if err != nil || got != 0x102 {
		t.Errorf("PendingSignals = %#x, %v; want 0x102 (SIGKILL and SIGINT)", got, err)
	}
	for _, bad := range []string{"Name:\tx\n", "SigPnd:\tzz\nShdPnd:\t0\n", "SigPnd:\t0\n"} {
		if _, err := PendingSignals([]byte(bad)); err == nil {
			t.Errorf("PendingSignals(%q) accepted", bad)
		}
	}
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PendingSignals(self); err != nil {
		t.Errorf("this process's status: %v", err)
	}
}
