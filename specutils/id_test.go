package specutils

import (
	"path"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "abc-123", "pod_1.container+2", strings.Repeat("x", MaxIDLength), "..a", "a..b"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "/abs", "a/", "x\x00", "sp ace", "new\nline", "ünï", strings.Repeat("x", MaxIDLength+1), "a/../b"} {
		err := ValidateID(id)
		if err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", id)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateID(%q) error is not one line: %q", id, err)
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"a", "../x", "a/b", ".", "", "ok-1.2_3+4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID(id) != nil {
			return
		}
		// Whatever is accepted is one safe path component.
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || path.Clean(id) != id || len(id) > MaxIDLength {
			t.Fatalf("accepted unsafe ID %q", id)
		}
		if path.Join("/run/runsc", id) != "/run/runsc/"+id {
			t.Fatalf("ID %q does not stay a child of the state root", id)
		}
	})
}
