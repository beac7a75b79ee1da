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
	"os/exec"
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

// MakeRootfs makes dir a busybox root file system with the module's
// scripts/mkrootfs.sh (found by walking up from the working directory to
// go.mod, so it works from any test package).
func MakeRootfs(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if out, err := exec.Command(filepath.Join(root, "scripts", "mkrootfs.sh"), dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mkrootfs.sh: %v: %s", err, out)
	}
	return nil
}

// moduleRoot returns the nearest directory at or above the working
// directory that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is one content-addressed file of the archive.
type blob struct {
	digest string
	data   []byte
}

// newBlob returns the blob of data, with its sha256 digest.
func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// jsonBlob returns the blob of v's JSON encoding.
func jsonBlob(v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, err
	}
	return newBlob(data), nil
}

// WriteImage writes archive, an OCI image layout in a tar (oci-layout,
// index.json, blobs/sha256/*) holding img: an uncompressed layer of
// img.Rootfs, an image config naming the layer's diff_id, and its
// manifest, tagged img.Tag by the index's org.opencontainers.image.ref.name
// annotation, for `ctr images import --base-name NAME`. It returns the
// manifest's digest.
func WriteImage(archive string, img Image) (string, error) {
	layerData, err := tarTree(img.Rootfs)
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
	// Uncompressed: the layer's digest is also its diff_id.
	layer := newBlob(layerData)
	config, err := jsonBlob(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Now().UTC().Format(time.RFC3339),
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layer.digest}},
	})
	if err != nil {
		return "", err
	}
	manifest, err := jsonBlob(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        descriptor{MediaType: mediaConfig, Digest: config.digest, Size: int64(len(config.data))},
		"layers":        []descriptor{{MediaType: mediaLayer, Digest: layer.digest, Size: int64(len(layer.data))}},
	})
	if err != nil {
		return "", err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []descriptor{{
			MediaType:   mediaManifest,
			Digest:      manifest.digest,
			Size:        int64(len(manifest.data)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	})
	if err != nil {
		return "", err
	}

	f, err := os.Create(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Now()}); err != nil {
			return "", err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", err
	}
	if err := add("index.json", index); err != nil {
		return "", err
	}
	for _, b := range []blob{layer, config, manifest} {
		if err := add("blobs/sha256/"+b.digest[len("sha256:"):], b.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return manifest.digest, f.Close()
}

// tarTree returns an uncompressed tar of the tree at root (directories,
// regular files and symbolic links), with names relative to root, owned by
// root.
func tarTree(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
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
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
