package container

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/specutils"
)

func TestRootMode(t *testing.T) {
	merged := t.TempDir()
	os.MkdirAll(filepath.Join(merged, "usr", "bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(merged, "bin"))
	split := t.TempDir()
	os.MkdirAll(filepath.Join(split, "usr"), 0o755)
	os.MkdirAll(filepath.Join(split, "bin"), 0o755)
	for _, c := range []struct {
		name, global, annotation string
		root                     string
		want, err                string
	}{
		{"default", "", "", merged, boot.OverlayNone, ""},
		{"overlay2 memory", "no", "", merged, boot.OverlayMemory, ""},
		{"global overlay", "overlay", "", merged, boot.OverlayMemory, ""},
		{"global state", "state", "", merged, boot.OverlayMemory, ""},
		{"global yes", "yes", "", merged, boot.OverlayVolatile, ""},
		{"annotation yes", "no", "yes", merged, boot.OverlayVolatile, ""},
		{"annotation other volatile mode", "overlay", "state", merged, boot.OverlayMemory, ""},
		{"annotation turning it off", "overlay", "no", merged, "", `annotation dev.runsc.volatile "no": the runtime runs with --volatile=overlay, which a container may not turn off`},
		{"empty annotation", "overlay", "-", merged, "", `annotation dev.runsc.volatile "": want no, yes, state or overlay`},
		{"yes on a split image", "yes", "", split, "", "--volatile yes: the image is not merged-/usr: /bin is not a symlink into /usr"},
		{"yes without usr", "", "yes", t.TempDir(), "", "annotation dev.runsc.volatile yes: the image has no /usr directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &specs.Spec{Root: &specs.Root{Path: c.root}}
			switch c.annotation {
			case "":
			case "-":
				spec.Annotations = map[string]string{specutils.VolatileAnnotation: ""}
			default:
				spec.Annotations = map[string]string{specutils.VolatileAnnotation: c.annotation}
			}
			cfg := Config{Volatile: c.global}
			if c.name == "overlay2 memory" {
				cfg.Overlay = boot.OverlayMemory
			}
			got, err := rootMode(cfg, CreateOpts{Spec: spec})
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("got %q, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
			state := c.global == "state" || c.annotation == "state"
			if state != (spec.Root.Readonly && len(spec.Mounts) == 1 && spec.Mounts[0].Destination == "/var" && spec.Mounts[0].Type == "tmpfs") {
				t.Errorf("state mode: root %+v, mounts %+v", spec.Root, spec.Mounts)
			}
		})
	}
	if _, err := rootMode(Config{}, CreateOpts{Spec: &specs.Spec{Root: &specs.Root{Path: t.TempDir()}}, EmptyRoot: true}); err != nil {
		t.Errorf("empty root: %v", err)
	}
}
