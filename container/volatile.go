package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/specutils"
)

// rootMode returns how the sandbox assembles the container's root (a
// boot.Overlay* mode) from --overlay2 and the --volatile mode (the
// spec's annotation wins over the flag), as systemd-nspawn's --volatile:
// yes, a tmpfs root with the image's /usr read-only; state, the image's
// root read-only with a tmpfs /var (o.Spec is changed so); overlay, the
// image read-only under a tmpfs overlay; no, --overlay2's mode. The
// annotation may pick another volatile mode, but not turn off the one
// the runtime was given: the runtime's caller decides whether writes may
// reach the host, not the workload.
func rootMode(cfg Config, o CreateOpts) (string, error) {
	mode, field := cfg.Volatile, "--volatile"
	if mode == "" {
		mode = specutils.VolatileNo
	}
	if a, ok := o.Spec.Annotations[specutils.VolatileAnnotation]; ok {
		field = "annotation " + specutils.VolatileAnnotation
		if err := specutils.ValidateVolatile(field, a); err != nil {
			return "", err
		}
		if a == specutils.VolatileNo && mode != specutils.VolatileNo {
			return "", fmt.Errorf("%s %q: the runtime runs with --volatile=%s, which a container may not turn off", field, a, mode)
		}
		mode = a
	}
	if err := specutils.ValidateVolatile(field, mode); err != nil {
		return "", err
	}
	switch {
	case o.EmptyRoot:
		return boot.OverlayEmpty, nil
	case mode == specutils.VolatileYes:
		// Checked here for a clear error before anything starts; the
		// sandbox reads the links from the tree it is served.
		if _, err := specutils.MergedUsrLinks(o.Spec.Root.Path); err != nil {
			return "", fmt.Errorf("%s yes: %w", field, err)
		}
		return boot.OverlayVolatile, nil
	case mode == specutils.VolatileState:
		// Mount points the spec needs are made in the overlay's upper
		// layer, never in the image; the init then makes the root
		// read-only. /var comes first, so that mounts under it land
		// on the tmpfs.
		o.Spec.Root.Readonly = true
		varTmpfs := specs.Mount{Destination: "/var", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=0755"}}
		o.Spec.Mounts = append([]specs.Mount{varTmpfs}, o.Spec.Mounts...)
		return boot.OverlayMemory, nil
	case mode == specutils.VolatileOverlay:
		return boot.OverlayMemory, nil
	}
	if cfg.Overlay == "" {
		return boot.OverlayNone, nil
	}
	return cfg.Overlay, nil
}
