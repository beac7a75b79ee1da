package boot

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestStripUnenforcedLSM(t *testing.T) {
	labelled := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{ApparmorProfile: "containers-default", SelinuxLabel: "system_u:system_r:container_t:s0:c1,c2"},
			Linux:   &specs.Linux{MountLabel: "system_u:object_r:container_file_t:s0:c1,c2"},
		}
	}
	for _, c := range []struct {
		name              string
		apparmor, selinux bool
		cleared           []string
	}{
		{"no LSM", false, false, []string{"process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel"}},
		{"AppArmor host", true, false, []string{"process.selinuxLabel", "linux.mountLabel"}},
		{"SELinux host", false, true, []string{"process.apparmorProfile"}},
		{"both", true, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := labelled()
			got := StripUnenforcedLSM(s, c.apparmor, c.selinux)
			if !reflect.DeepEqual(got, c.cleared) {
				t.Fatalf("cleared %v, want %v", got, c.cleared)
			}
			if (s.Process.ApparmorProfile != "") != c.apparmor || (s.Process.SelinuxLabel != "") != c.selinux || (s.Linux.MountLabel != "") != c.selinux {
				t.Fatalf("left %+v %+v", s.Process, s.Linux)
			}
		})
	}
	if got := StripUnenforcedLSM(&specs.Spec{}, false, false); got != nil {
		t.Fatalf("a spec without process or linux: %v", got)
	}
}
