package ctrdenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// OCI media types of the image archive.
const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// DefaultPath is the PATH of an image's environment when Image.Env is
// empty.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image describes a one-layer OCI image for WriteImage.
type Image struct {
	// Rootfs is the directory tree that becomes the image's only layer
	// (directories, regular files and symbolic links, owned by root).
	Rootfs string
	// Entrypoint and Cmd are the image config's; Cmd ["sh"] when both
	// are empty.
	Entrypoint, Cmd []string
	// Env is the config's environment; [DefaultPath] when empty.
	Env []string
	// Tag is the index's org.opencontainers.image.ref.name annotation:
	// `ctr images import --base-name NAME` names the image NAME:Tag.
	// Default "latest".
	Tag string
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Layout is an OCI image layout being built: content-addressed blobs and
// an index of manifests, each named by its
// org.opencontainers.image.ref.name annotation. The zero value is empty.
type Layout struct {
	blobs []blob
	seen  map[string]bool
	index []Descriptor
}

// blob is one content-addressed file of a layout.
type blob struct {
	digest string
	data   []byte
}

// add stores data (once) and returns its descriptor of mediaType.
func (l *Layout) add(mediaType string, data []byte) Descriptor {
	sum := sha256.Sum256(data)
	b := blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if !l.seen[b.digest] {
		l.seen[b.digest] = true
		l.blobs = append(l.blobs, b)
	}
	return Descriptor{MediaType: mediaType, Digest: b.digest, Size: int64(len(data))}
}

// AddLayer stores an uncompressed layer tar (its digest is also its
// diff_id) and returns its descriptor.
func (l *Layout) AddLayer(data []byte) Descriptor { return l.add(mediaLayer, data) }

// AddImage stores the config of an image of the one layer, whose
// "config" is config and whose creation time is created (RFC 3339), and
// its manifest, which the index names ref. It returns the manifest's
// digest.
func (l *Layout) AddImage(ref, created string, config map[string]any, layer Descriptor) (string, error) {
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      created,
		"config":       config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layer.Digest}},
	})
	if err != nil {
		return "", err
	}
	cd := l.add(mediaConfig, cfg)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        cd,
		"layers":        []Descriptor{layer},
	})
	if err != nil {
		return "", err
	}
	md := l.add(mediaManifest, manifest)
	md.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref}
	l.index = append(l.index, md)
	return md.Digest, nil
}

// files returns the layout's files: oci-layout, index.json, then the
// blobs under blobs/sha256/, in the order they were added.
func (l *Layout) files() ([][2]string, error) {
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": l.index})
	if err != nil {
		return nil, err
	}
	files := [][2]string{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"index.json", string(index)}}
	for _, b := range l.blobs {
		files = append(files, [2]string{"blobs/sha256/" + b.digest[len("sha256:"):], string(b.data)})
	}
	return files, nil
}

// WriteDir writes the layout as a directory dir (made if need be), e.g.
// for `skopeo copy oci:DIR:REF`.
func (l *Layout) WriteDir(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	files, err := l.files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteTar writes the layout as a tar archive, for `ctr images import`.
func (l *Layout) WriteTar(archive string) error {
	files, err := l.files()
	if err != nil {
		return err
	}
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Now()}); err != nil {
			return err
		}
	}
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: file[0], Mode: 0o644, Size: int64(len(file[1])), ModTime: time.Now()}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(file[1])); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// WriteImage writes archive, an OCI image layout in a tar (oci-layout,
// index.json, blobs/sha256/*) holding img: an uncompressed layer of
// img.Rootfs, an image config naming the layer's diff_id, and its
// manifest, tagged img.Tag by the index's org.opencontainers.image.ref.name
// annotation, for `ctr images import --base-name NAME`. It returns the
// manifest's digest.
func WriteImage(archive string, img Image) (string, error) {
	layerData, err := TarTree(img.Rootfs, TreeOptions{})
	if err != nil {
		return "", fmt.Errorf("layer of %s: %v", img.Rootfs, err)
	}
	cmd, env, tag := img.Cmd, img.Env, img.Tag
	if len(cmd) == 0 && len(img.Entrypoint) == 0 {
		cmd = []string{"sh"}
	}
	if len(env) == 0 {
		env = []string{DefaultPath}
	}
	if tag == "" {
		tag = "latest"
	}
	cfg := map[string]any{"Env": env}
	if len(cmd) > 0 {
		cfg["Cmd"] = cmd
	}
	if len(img.Entrypoint) > 0 {
		cfg["Entrypoint"] = img.Entrypoint
	}
	var l Layout
	digest, err := l.AddImage(tag, time.Now().UTC().Format(time.RFC3339), cfg, l.AddLayer(layerData))
	if err != nil {
		return "", err
	}
	return digest, l.WriteTar(archive)
}

// TreeOptions say how TarTree writes a tree.
type TreeOptions struct {
	// ModTime, when set, is every entry's modification time (and access
	// and change times are left out), so that the tar is reproducible;
	// otherwise the files' own times are kept.
	ModTime time.Time
	// HardLinkTarget, when set, turns every symbolic link to that name
	// (e.g. "busybox") into a hard link to the file of that name in the
	// link's directory, written after every other entry.
	HardLinkTarget string
}

// TarTree returns an uncompressed tar of the tree at root (directories,
// regular files and symbolic links), with names relative to root, owned
// by root.
func TarTree(root string, o TreeOptions) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var links []*tar.Header
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
			if o.HardLinkTarget != "" && link == o.HardLinkTarget {
				links = append(links, &tar.Header{Typeflag: tar.TypeLink, Name: filepath.ToSlash(rel),
					Linkname: filepath.ToSlash(filepath.Join(filepath.Dir(rel), link)), Mode: 0o755, ModTime: o.ModTime})
				return nil
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if !o.ModTime.IsZero() {
			hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = o.ModTime, time.Time{}, time.Time{}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, hdr := range links {
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
