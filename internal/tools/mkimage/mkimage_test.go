package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// readTar returns the files of a tar stream.
func readTar(t *testing.T, r io.Reader) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func blobs(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

// TestImageLayout writes an image around a stand-in binary and checks the
// OCI layout: both names, a gzip layer whose digest and diff id match, the
// binary executable at /usr/bin/driftwatch, the entrypoint and the label.
func TestImageLayout(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "driftwatch")
	payload := bytes.Repeat([]byte("driftwatch-binary "), 1000)
	if err := os.WriteFile(bin, payload, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := run(bin, out, []string{"example.test/driftwatch:local", "example.test/driftwatch:v1.2.3"}, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	files := blobs(t, out)
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 2 || index.Manifests[0].Annotations["io.containerd.image.name"] != "example.test/driftwatch:local" ||
		index.Manifests[1].Annotations["io.containerd.image.name"] != "example.test/driftwatch:v1.2.3" || index.Manifests[0].Digest != index.Manifests[1].Digest {
		t.Fatalf("index %+v", index)
	}
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct {
			MediaType, Digest string
			Size              int64
		}
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers %+v", manifest.Layers)
	}
	layer := files["blobs/sha256/"+strings.TrimPrefix(manifest.Layers[0].Digest, "sha256:")]
	if sum := sha256.Sum256(layer); "sha256:"+hex.EncodeToString(sum[:]) != manifest.Layers[0].Digest || int64(len(layer)) != manifest.Layers[0].Size {
		t.Fatal("layer digest or size does not match the blob")
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	var config struct {
		Config struct {
			Entrypoint []string
			Labels     map[string]string
		}
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(manifest.Config.Digest, "sha256:")], &config); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Error("diff id is not the digest of the uncompressed layer")
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/usr/bin/driftwatch" || config.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("config %+v", config.Config)
	}
	hdrs := readTar(t, bytes.NewReader(raw))
	h := hdrs["usr/bin/driftwatch"]
	if h == nil || h.Mode&0o111 == 0 || h.Size != int64(len(payload)) {
		t.Fatalf("usr/bin/driftwatch in layer: %+v", h)
	}
	for _, d := range []string{"tmp/", "var/lib/driftwatch/", "etc/driftwatch/rules.d/"} {
		if hdrs[d] == nil {
			t.Errorf("layer lacks %s", d)
		}
	}
	if hdrs["bin/sh"] != nil || len(hdrs) > 12 {
		t.Errorf("layer holds more than the binary and its directories: %d entries", len(hdrs))
	}
}

// TestImageImportsIntoContainerd imports the image into a private
// containerd with ctr, as `make image-load` does.
func TestImageImportsIntoContainerd(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd not installed")
	}
	bin := filepath.Join(t.TempDir(), "driftwatch")
	if err := os.WriteFile(bin, []byte("#!stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := run(bin, out, []string{"example.test/driftwatch:local", "example.test/driftwatch:v9"}, "v9"); err != nil {
		t.Fatal(err)
	}
	c := testinfra.StartContainerd(t)
	if b, err := exec.Command("ctr", "-a", c.Socket(), "-n", testinfra.ContainerdNamespace, "images", "import", out).CombinedOutput(); err != nil {
		t.Fatalf("ctr import: %v\n%s", err, b)
	}
	b, err := exec.Command("ctr", "-a", c.Socket(), "-n", testinfra.ContainerdNamespace, "images", "ls", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, b)
	}
	for _, n := range []string{"example.test/driftwatch:local", "example.test/driftwatch:v9"} {
		if !strings.Contains(string(b), n) {
			t.Errorf("containerd lacks %s after import; has:\n%s", n, b)
		}
	}
}
