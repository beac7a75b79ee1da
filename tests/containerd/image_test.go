package containerd

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

// buildImage makes a busybox root file system in rootfs
// (scripts/mkrootfs.sh) and writes archive, an OCI image layout in a tar
// (oci-layout, index.json, blobs/sha256/*) holding one image: an
// uncompressed layer of rootfs, an image config naming the layer's diff_id
// with Cmd ["sh"], and its manifest, tagged "latest" by the index's
// org.opencontainers.image.ref.name annotation (`ctr images import
// --base-name localhost/busybox` names it localhost/busybox:latest). It
// returns the manifest's digest.
func buildImage(rootfs, archive string) (string, error) {
	if out, err := exec.Command("../../scripts/mkrootfs.sh", rootfs).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkrootfs.sh: %v: %s", err, out)
	}
	layerData, err := tarTree(rootfs)
	if err != nil {
		return "", fmt.Errorf("layer of %s: %v", rootfs, err)
	}
	// Uncompressed: the layer's digest is also its diff_id.
	layer := newBlob(layerData)
	config, err := jsonBlob(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Now().UTC().Format(time.RFC3339),
		"config": map[string]any{
			"Cmd": []string{"sh"},
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.digest}},
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
			Annotations: map[string]string{"org.opencontainers.image.ref.name": "latest"},
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
