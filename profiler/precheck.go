package profiler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// bbolt's on-disk meta page (go.etcd.io/bbolt, file format version 2): a
// 16-byte page header, then magic, version, page size, flags, root bucket
// (root page, sequence), freelist page, high-water page id, txid, checksum.
const (
	boltMagic      = 0xED0CDAED
	boltPageHeader = 16
	boltMetaSize   = 64
)

// precheck reads the two meta pages of an existing bbolt file and verifies
// that at least one is valid and that the file is long enough for the
// pages it claims. bbolt maps the file and would take a fatal SIGBUS on a
// truncated file instead of returning an error, so this runs first.
func precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil // bbolt initialises empty files
	}
	var firstErr error
	valid := false
	for i := 0; i < 2; i++ {
		err := checkMeta(f, size, i)
		if err == nil {
			valid = true
			continue
		}
		if errors.Is(err, errTruncated) {
			return err // bbolt may pick this meta and fault on the missing pages
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if !valid {
		return fmt.Errorf("not a usable bbolt file: %w", firstErr)
	}
	return nil
}

func checkMeta(f *os.File, size int64, i int) error {
	// Meta 0 is at offset 0; meta 1 at one page size, which meta 0 (or, if
	// meta 0 is bad, the OS page size 4096 guess) tells.
	var hdr [boltPageHeader + boltMetaSize]byte
	off := int64(0)
	if i == 1 {
		off = 4096
		if _, err := f.ReadAt(hdr[:], 0); err == nil {
			if ps := binary.LittleEndian.Uint32(hdr[boltPageHeader+8:]); ps >= 512 && ps <= 1<<20 {
				off = int64(ps)
			}
		}
	}
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return fmt.Errorf("meta page %d: %w", i, err)
	}
	m := hdr[boltPageHeader:]
	if binary.LittleEndian.Uint32(m[0:]) != boltMagic {
		return fmt.Errorf("meta page %d: bad magic", i)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
		return fmt.Errorf("meta page %d: checksum mismatch", i)
	}
	pageSize := int64(binary.LittleEndian.Uint32(m[8:]))
	hwm := int64(binary.LittleEndian.Uint64(m[40:]))
	if pageSize < 512 || hwm*pageSize > size {
		return fmt.Errorf("meta page %d: claims %d pages of %d bytes but the file has %d bytes: %w", i, hwm, pageSize, size, errTruncated)
	}
	return nil
}

var errTruncated = errors.New("file truncated")
