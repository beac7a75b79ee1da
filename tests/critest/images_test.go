package critest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/ctrdenv"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// image is one image pushed to the private registry as repo:tag (the path
// critest's name has under its registry, which containerd mirrors).
type image struct {
	repo, tag string
	// config is merged into the image config's "config".
	config map[string]any
	// variant makes otherwise equal images differ (a label), so that they
	// get different image IDs; images with the same variant are the same
	// image under several tags.
	variant string
}

// pauseScript is the sandbox's and pause:3.9's process: it waits for a
// signal and exits.
const pauseScript = `trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done`

// pgrepScript stands in for pgrep NAME: the pids whose command is NAME.
const pgrepScript = `#!/bin/sh
found=1
for d in /proc/[0-9]*; do
	[ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && { echo "${d#/proc/}"; found=0; }
done
exit $found
`

// ipcsScript stands in for ipcs -m: the System V shared memory segments
// (key, shmid, perms, bytes) of the IPC namespace.
const ipcsScript = `#!/bin/sh
echo "key shmid perms bytes"
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size rest; do echo "$key $shmid $perms $size"; done
`

// testImages are the images critest v1.37.0 pulls (pkg/framework/util.go,
// pkg/validate/consts.go), all made of the same busybox layer.
func testImages() []image {
	pause := map[string]any{"Entrypoint": []string{"/bin/sh", "-c", pauseScript}}
	const ct = "k8s-staging-cri-tools/"
	imgs := []image{
		{repo: "e2e-test-images/busybox", tag: "1.29-2", config: map[string]any{"Cmd": []string{"sh"}}, variant: "busybox"},
		{repo: "runsc-critest/pause", tag: "1", config: pause, variant: "sandbox"},
		// registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9: the same
		// image from two registries.
		{repo: "pause", tag: "3.9", config: pause, variant: "pause"},
		{repo: ct + "test-image-latest", tag: "latest", variant: "latest"},
		{repo: ct + "test-image-tag", tag: "test", variant: "tag"},
		{repo: ct + "test-image-tag", tag: "all", variant: "tag-all"},
		{repo: ct + "test-image-user-uid", tag: "latest", config: map[string]any{"User": "1002"}, variant: "user-uid"},
		{repo: ct + "test-image-user-username", tag: "latest", config: map[string]any{"User": "www-data"}, variant: "user-username"},
		{repo: ct + "test-image-user-uid-group", tag: "latest", config: map[string]any{"User": "1003:users"}, variant: "user-uid-group"},
		{repo: ct + "test-image-user-username-group", tag: "latest", config: map[string]any{"User": "www-data:users"}, variant: "user-username-group"},
		{repo: ct + "test-image-predefined-group", tag: "latest", config: map[string]any{"User": "1000"}, variant: "predefined-group"},
	}
	for i := 1; i <= 3; i++ {
		imgs = append(imgs,
			image{repo: fmt.Sprintf("%stest-image-%d", ct, i), tag: "latest", variant: fmt.Sprintf("different-%d", i)},
			image{repo: ct + "test-image-tags", tag: fmt.Sprint(i), variant: "tags"})
	}
	return imgs
}

// pushImages builds an OCI image layout holding every test image (one
// busybox layer from scripts/mkrootfs.sh, one config per variant) and
// pushes each into the private registry with skopeo.
func (e *env) pushImages(t *testing.T) {
	start := time.Now()
	rootfs := filepath.Join(e.dir, "rootfs")
	if err := e2e.MakeRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	// The user the predefined-group image names, in a group of the image
	// (images/image-predefined-group in cri-tools).
	extra := map[string]string{
		"etc/passwd": "default-user:x:1000:1000::/home/default-user:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n",
		"etc/group":  "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\nusers:x:100:\nwww-data:x:33:\n",
	}
	for name, add := range extra {
		f, err := os.OpenFile(filepath.Join(rootfs, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(add)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Debian's busybox-static has no pgrep or ipcs, which specs run
	// ("execSync with timeout", "HostIpc"): small stand-ins.
	for name, script := range map[string]string{"bin/pgrep": pgrepScript, "bin/ipcs": ipcsScript} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Fixed times, so that the layer is reproducible; links to
	// "busybox" become hard links, as in the busybox images, so that
	// masking an applet (MaskedPaths /bin/ls) does not mask busybox
	// itself.
	layer, err := ctrdenv.TarTree(rootfs, ctrdenv.TreeOptions{ModTime: time.Unix(1704067200, 0), HardLinkTarget: "busybox"})
	if err != nil {
		t.Fatalf("layer of %s: %v", rootfs, err)
	}
	var l ctrdenv.Layout
	layerDesc := l.AddLayer(layer)
	// A fixed creation time: equal variants give equal configs.
	created := "2024-01-01T00:00:00Z"
	imgs := testImages()
	for _, img := range imgs {
		cfg := map[string]any{
			"Cmd":    []string{"sh"},
			"Env":    []string{ctrdenv.DefaultPath},
			"Labels": map[string]string{"org.runsc.critest.variant": img.variant},
		}
		for k, v := range img.config {
			cfg[k] = v
		}
		if _, err := l.AddImage(refName(img), created, cfg, layerDesc); err != nil {
			t.Fatal(err)
		}
	}
	layout := filepath.Join(e.dir, "oci")
	if err := l.WriteDir(layout); err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		dst := fmt.Sprintf("docker://%s/%s:%s", registryAddr, img.repo, img.tag)
		if _, err := e.inNetns(2*time.Minute, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
			"oci:"+layout+":"+refName(img), dst); err != nil {
			t.Fatalf("pushing %s: %v", dst, err)
		}
	}
	os.RemoveAll(rootfs)
	t.Logf("pushed %d images (one busybox layer of %d KiB) to the registry at %s in %v; containerd pulls %s from it",
		len(imgs), len(layer)>>10, registryAddr, time.Since(start).Round(time.Millisecond), strings.Join(mirrored, ", "))
}

// refName is img's name inside the OCI layout.
func refName(img image) string {
	return strings.ReplaceAll(img.repo, "/", "-") + "-" + img.tag
}
