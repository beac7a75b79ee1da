package podman

import (
	"strings"
	"testing"
)

// TestVolatileAnnotation: podman's --annotation dev.runsc.volatile=state
// gives the container its image read-only with a tmpfs /var: the write
// to /var works and stays in the sandbox, the one to /etc is refused,
// and podman diff finds nothing in the container's snapshot.
func TestVolatileAnnotation(t *testing.T) {
	requireEnv(t)
	name := ctrName(t, "volatile")
	r := pm(t, "run with dev.runsc.volatile=state", runArgs("--name", name, "--annotation", "dev.runsc.volatile=state", image,
		"sh", "-c", "touch /var/in-tmpfs && echo var ok; touch /etc/refused")...)
	wantCode(t, "touch /etc/refused fails", r, 1)
	wantOutput(t, "the write to /var", r.Stdout, "var ok")
	if !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("/etc was not refused as read-only: %q", r.Stderr)
	}
	diff := mustPM(t, "diff", "diff", name)
	if strings.Contains(diff, "in-tmpfs") || strings.Contains(diff, "refused") {
		t.Fatalf("podman diff lists volatile writes:\n%s", diff)
	}
	t.Logf("checked podman diff lists no volatile write: %q", diff)
}

// TestRuntimeConfigAnnotation: a runtime config passed with podman's
// --annotation makes its directories in the container's root. podman
// reads the flag's value as CSV: JSON goes in double quotes, its own
// quotes doubled.
func TestRuntimeConfigAnnotation(t *testing.T) {
	requireEnv(t)
	config := `{"mkdir":["/made/by/runsc","/and/this"]}`
	csv := `"dev.runsc.runtime-config=` + strings.ReplaceAll(config, `"`, `""`) + `"`
	r := pm(t, "run with dev.runsc.runtime-config", runArgs("--rm", "--annotation", csv, image,
		"sh", "-c", "ls -d /made/by/runsc /and/this")...)
	wantCode(t, "ls the made directories", r, 0)
	wantOutput(t, "the runtime config's directories", r.Stdout, "/and/this\n/made/by/runsc")
}
