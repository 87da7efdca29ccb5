package testinfra

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// OCI media types used by WriteOCIImage.
const (
	mediaTypeIndex     = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig    = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer     = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// OCIOptions are the optional parts of WriteOCIImageWith.
type OCIOptions struct {
	// Gzip compresses the layer (best compression; deterministic).
	Gzip bool
	// Names are further references of the same manifest in index.json.
	Names []string
	// Labels go into the image config.
	Labels map[string]string
}

// ImageConfig is the runtime part of an image config.
type ImageConfig struct {
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	User       string            `json:"User,omitempty"`
}

// OCIImage describes an image written by WriteOCIImage.
type OCIImage struct {
	Name           string // reference, e.g. "driftwatch.test/web:1"
	ManifestDigest string // sha256:... of the manifest
	ConfigDigest   string // sha256:... of the config: the image id CRI reports as imageRef
	LayerDiffID    string // sha256:... of the uncompressed layer
	LayerSize      int64  // bytes of the layer blob as stored (compressed with Gzip)
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// WriteOCIImage writes an OCI image-layout tar to w: one uncompressed layer
// holding rootfs (numeric owners, names sorted, mtimes zero), a config, a
// manifest, index.json whose manifest carries io.containerd.image.name=name,
// and oci-layout. The same rootfs and config always give the same digests.
func WriteOCIImage(w io.Writer, name, rootfs string, cfg ImageConfig) (OCIImage, error) {
	return WriteOCIImageWith(w, name, rootfs, cfg, OCIOptions{})
}

// WriteOCIImageWith is WriteOCIImage with options: a gzip-compressed layer,
// more names, config labels.
func WriteOCIImageWith(w io.Writer, name, rootfs string, cfg ImageConfig, opts OCIOptions) (OCIImage, error) {
	var layer bytes.Buffer
	if err := tarRootfs(&layer, rootfs); err != nil {
		return OCIImage{}, err
	}
	layerDigest := digestOf(layer.Bytes()) // the diff id
	blob, blobType := layer.Bytes(), mediaTypeLayer
	if opts.Gzip {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if _, err := zw.Write(blob); err != nil {
			return OCIImage{}, fmt.Errorf("layer gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return OCIImage{}, fmt.Errorf("layer gzip: %w", err)
		}
		blob, blobType = z.Bytes(), mediaTypeLayerGzip
	}
	if len(opts.Labels) > 0 {
		cfg.Labels = opts.Labels
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return OCIImage{}, fmt.Errorf("image config: %w", err)
	}
	configDesc := descriptor{MediaType: mediaTypeConfig, Digest: digestOf(config), Size: int64(len(config))}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        configDesc,
		"layers":        []descriptor{{MediaType: blobType, Digest: digestOf(blob), Size: int64(len(blob))}},
	})
	if err != nil {
		return OCIImage{}, fmt.Errorf("image manifest: %w", err)
	}
	var descs []descriptor
	for _, n := range append([]string{name}, opts.Names...) {
		descs = append(descs, descriptor{
			MediaType: mediaTypeManifest, Digest: digestOf(manifest), Size: int64(len(manifest)),
			Annotations: map[string]string{"io.containerd.image.name": n, "org.opencontainers.image.ref.name": refTag(n)},
			Platform:    &platform{Architecture: runtime.GOARCH, OS: "linux"},
		})
	}
	manifestDesc := descs[0]
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeIndex, "manifests": descs})
	if err != nil {
		return OCIImage{}, fmt.Errorf("image index: %w", err)
	}
	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(digestOf(blob)), blob},
		{blobPath(configDesc.Digest), config},
		{blobPath(manifestDesc.Digest), manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return OCIImage{}, fmt.Errorf("image tar: %w", err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return OCIImage{}, fmt.Errorf("image tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return OCIImage{}, fmt.Errorf("image tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return OCIImage{}, fmt.Errorf("image tar: %w", err)
	}
	return OCIImage{Name: name, ManifestDigest: manifestDesc.Digest, ConfigDigest: configDesc.Digest, LayerDiffID: layerDigest, LayerSize: int64(len(blob))}, nil
}

// refTag is the tag part of a reference ("1" for "x.test/a:1"), or latest.
func refTag(name string) string {
	slash := strings.LastIndexByte(name, '/')
	if i := strings.LastIndexByte(name, ':'); i > slash {
		return name[i+1:]
	}
	return "latest"
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// tarRootfs writes dir as a tar stream: paths relative to dir, sorted,
// numeric owners only, mtimes zero. Regular files, directories and symlinks
// are kept with their modes (setuid included); other types are skipped.
func tarRootfs(w io.Writer, dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: time.Unix(0, 0)}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		switch {
		case fi.Mode().IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
		case fi.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return fmt.Errorf("layer: %w", err)
			}
		default:
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("layer %s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("layer: %w", err)
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("layer %s: %w", rel, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}
