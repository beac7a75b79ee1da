package specutils

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The --volatile modes, as systemd-nspawn's --volatile.
const (
	// VolatileNo leaves the root as the overlay mode says.
	VolatileNo = "no"
	// VolatileYes makes the root a tmpfs holding only the image's /usr,
	// read-only, and the merged-/usr symlinks into it.
	VolatileYes = "yes"
	// VolatileState keeps the image's root read-only with a tmpfs /var.
	VolatileState = "state"
	// VolatileOverlay puts the image read-only under a tmpfs overlay.
	VolatileOverlay = "overlay"
)

// VolatileAnnotation asks for a --volatile mode per container (clients
// that pass no runtime flags per container: containerd, podman).
const VolatileAnnotation = "dev.runsc.volatile"

// ValidateVolatile checks a --volatile mode; field names where it came
// from in the error.
func ValidateVolatile(field, mode string) error {
	switch mode {
	case VolatileNo, VolatileYes, VolatileState, VolatileOverlay:
		return nil
	}
	return fmt.Errorf("%s %q: want no, yes, state or overlay", field, mode)
}

// usrLinks are the top-level directories a merged-/usr image has as
// symlinks into /usr.
var usrLinks = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// UsrLinks returns the merged-/usr symlinks a root holding only the /usr
// at usr needs: name to usr/name, for each of bin, sbin and lib* that
// usr has as a directory.
func UsrLinks(usr string) map[string]string {
	links := map[string]string{}
	for _, name := range usrLinks {
		if fi, err := os.Lstat(filepath.Join(usr, name)); err == nil && fi.IsDir() {
			links[name] = "usr/" + name
		}
	}
	return links
}

// MergedUsrLinks checks that the image at root is merged-/usr (a /usr
// directory; each of /bin, /sbin and /lib* absent or a symlink into
// /usr) and returns the symlinks a root holding only its /usr needs:
// name to target, the image's own or, where it has none but /usr has the
// directory, name to usr/name. Nothing is followed: only the image's
// links are read.
func MergedUsrLinks(root string) (map[string]string, error) {
	if fi, err := os.Lstat(filepath.Join(root, "usr")); err != nil || !fi.IsDir() {
		return nil, errors.New("the image has no /usr directory")
	}
	links := map[string]string{}
	for _, name := range usrLinks {
		target, err := os.Readlink(filepath.Join(root, name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			if target, ok := UsrLinks(filepath.Join(root, "usr"))[name]; ok {
				links[name] = target
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("the image is not merged-/usr: /%s is not a symlink into /usr", name)
		}
		if t := strings.TrimPrefix(filepath.Clean(target), "/"); !strings.HasPrefix(t, "usr/") {
			return nil, fmt.Errorf("the image is not merged-/usr: /%s points to %q, not into /usr", name, target)
		}
		links[name] = target
	}
	return links, nil
}
