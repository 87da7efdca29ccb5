package cluster

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/driftwatch/driftwatch/profiler"
)

// maxBlobBytes bounds a decoded blob (a corrupt or hostile object must not
// exhaust memory): far above what MaxObjectBytes of gzip can legitimately hold.
const maxBlobBytes = 64 << 20

// encodeBlob encodes a profile as Encoding. Equal profiles give equal
// strings (the JSON form is ordered and gzip is deterministic).
func encodeBlob(pj profiler.ProfileJSON) (string, error) {
	raw, err := json.Marshal(pj)
	if err != nil {
		return "", fmt.Errorf("encode profile %q: %w", pj.Key, err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		return "", fmt.Errorf("encode profile %q: %w", pj.Key, err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("encode profile %q: %w", pj.Key, err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// decodeBlob decodes an Encoding blob into a detached profile.
func decodeBlob(s string) (*profiler.Profile, error) {
	pj, err := decodeJSON(s)
	if err != nil {
		return nil, err
	}
	pr, err := profiler.ProfileFromJSON(pj)
	if err != nil {
		return nil, fmt.Errorf("profile blob %q: %w", pj.Key, err)
	}
	return pr, nil
}

// digest is a short content hash.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// keyHash is the label value for a profile key.
func keyHash(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return fmt.Sprintf("%016x", h.Sum64())
}

// ObjectName returns the ImageProfile name of a profile key: a readable
// stem from the image's last path element (lower case, [a-z0-9-]) and the
// key's FNV-64 hash, which keeps names unique and valid.
func ObjectName(key string) string {
	stem := key
	if i := strings.IndexAny(stem, "@:"); i >= 0 && !strings.Contains(stem[i:], "/") {
		stem = stem[:i]
	}
	if i := strings.LastIndex(stem, "/"); i >= 0 {
		stem = stem[i+1:]
	}
	if i := strings.IndexAny(stem, "@:"); i >= 0 {
		stem = stem[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(stem) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "profile"
	}
	return s + "-" + keyHash(key)
}
