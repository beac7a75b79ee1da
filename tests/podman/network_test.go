package podman

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// TestBridgeNetwork runs a container on podman's default network (a
// bridge, through podman's network backend) with CAP_NET_ADMIN and
// CAP_NET_RAW: it has the address podman gave it on eth0, reaches the
// bridge's gateway, and may change its own routes, as with runc (runsc
// adopts the network namespace podman made in the host's user namespace
// into the pod's). podman runs in a network namespace of its own
// (unshare --net), so that the bridge, its addresses and firewall rules
// never reach the host's.
func TestBridgeNetwork(t *testing.T) {
	requireEnv(t)
	out := filepath.Join(env.dir, "out", "bridge")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &e2e.Runner{
		Program:     "unshare",
		Flags:       func() []string { return append([]string{"--net", "--", "podman"}, env.globalFlags()...) },
		Env:         env.runner.Env,
		OutDir:      out,
		StepTimeout: env.runner.StepTimeout,
	}
	script := `ip -o -4 addr show eth0 | grep -o 'inet [0-9./]*'
gw=$(ip route | sed -n 's/^default via \([0-9.]*\).*/\1/p')
echo "gateway $gw"
ping -c1 -W5 "$gw" >/dev/null && echo pinged-gateway
ip route add 10.123.0.0/16 dev eth0 && echo admin-ok`
	res := r.Test(t, invocation{Step: "run --network bridge", Args: []string{"run", "--rm", "--network", "bridge",
		"--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
		"--ulimit", "nofile=1024:4096", "--ulimit", "nproc=4096:4096", image, "sh", "-c", script}})
	wantCode(t, "run --network bridge", res, 0)
	for _, want := range []string{"inet ", "gateway ", "pinged-gateway", "admin-ok"} {
		if !strings.Contains(res.Stdout, want) {
			t.Fatalf("the container on podman's bridge printed %q, missing %q (stderr %q)", res.Stdout, want, res.Stderr)
		}
	}
	t.Logf("checked a container on podman's bridge network: %s", strings.Join(strings.Fields(res.Stdout), " "))
}
