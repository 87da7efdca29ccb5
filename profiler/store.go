package profiler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/driftwatch/driftwatch/internal/safefile"
)

// SchemaVersion is the store layout written by this build.
const SchemaVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketProfiles = []byte("profiles")
	keySchema      = []byte("schema")
)

// migrations[v] upgrades a store from schema v to v+1 inside one
// transaction. Version 0 is a bbolt file without driftwatch's meta bucket
// (an empty file created by another tool, or one interrupted before its
// first commit).
var migrations = map[int]func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketProfiles); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketMeta)
		return err
	},
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	// Logger receives the set-aside warning (default slog.Default()).
	Logger *slog.Logger
	// LockTimeout bounds waiting for another process's lock on the file
	// (default 5s). A locked file is an error, never set aside.
	LockTimeout time.Duration
	// NoSync skips fsync on commit (tests and benchmarks only).
	NoSync bool
	// ReadOnly opens an existing store for reading only: the file is never
	// created, migrated, set aside or written; a missing, corrupt or
	// older-schema file is an error (a *CorruptError for corruption).
	ReadOnly bool
}

// CorruptError reports that a store opened read-only is unusable; the file
// was left as it was.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("profile store %s is unusable (%v); left unchanged (opened read-only)", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Store is the bbolt file holding every profile.
type Store struct {
	db   *bolt.DB
	path string
	log  *slog.Logger
}

// SetAsideError reports that the file at Path could not be opened or
// failed validation, was renamed to MovedTo, and a fresh store was started.
// OpenStore returns it together with a working *Store: callers should log
// it and continue.
type SetAsideError struct {
	Path    string
	MovedTo string
	Err     error
}

func (e *SetAsideError) Error() string {
	return fmt.Sprintf("profile store %s is unusable (%v): moved aside to %s, started a fresh store", e.Path, e.Err, e.MovedTo)
}

func (e *SetAsideError) Unwrap() error { return e.Err }

// OpenStore opens (creating if needed) the profile store at path. A file
// that cannot be opened as bbolt, fails bbolt's consistency check, has a
// newer-than-supported or unreadable schema, or holds undecodable
// profiles is renamed to <path>.corrupt-<UTC timestamp> (never overwritten
// in place) and a fresh store is created: OpenStore then returns the new
// store AND a *SetAsideError, which is also logged via opts.Logger. A file
// locked by another process is an error without a store.
func OpenStore(path string, opts StoreOptions) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 5 * time.Second
	}
	// A symbolic link at the file or its directory is refused, never
	// initialised through nor set aside.
	if err := safefile.CheckPath(path); err != nil {
		return nil, fmt.Errorf("profile store: %w", err)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("profile store: %w", err)
		}
		s, err := openStore(path, opts)
		if err != nil && !errors.Is(err, errLocked) {
			return nil, &CorruptError{Path: path, Err: err}
		}
		return s, err
	}
	s, err := openStore(path, opts)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, errLocked) || errors.Is(err, errNewerSchema) || errors.Is(err, safefile.ErrSymlink) || errors.Is(err, safefile.ErrNotRegular) {
		return nil, err
	}
	if _, statErr := os.Lstat(path); statErr != nil {
		return nil, err // nothing to set aside: a directory or permission problem
	}
	moved := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if rerr := os.Rename(path, moved); rerr != nil {
		return nil, fmt.Errorf("profile store %s is unusable (%v) and could not be moved aside: %w", path, err, rerr)
	}
	sa := &SetAsideError{Path: path, MovedTo: moved, Err: err}
	opts.Logger.Error("profile store set aside", "path", path, "moved_to", moved, "err", err)
	s, err2 := openStore(path, opts)
	if err2 != nil {
		return nil, fmt.Errorf("%v; the fresh store failed too: %w", sa, err2)
	}
	return s, sa
}

var (
	errLocked      = errors.New("store is locked by another process")
	errNewerSchema = errors.New("store schema is newer than this build")
)

func openStore(path string, opts StoreOptions) (s *Store, err error) {
	// bbolt can panic on some corrupt pages; treat that as corruption.
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			s, err = nil, fmt.Errorf("%s: bbolt panicked reading the file: %v", path, r)
		}
	}()
	debug.SetPanicOnFault(true) // a fault reading the mapping becomes a recoverable panic
	defer debug.SetPanicOnFault(false)
	if err := precheck(path); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly, OpenFile: safefile.OpenFile})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w (%v)", path, errLocked, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := validate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if opts.ReadOnly {
		err = db.View(func(tx *bolt.Tx) error {
			v, err := schemaOf(tx)
			if err == nil && v != SchemaVersion {
				err = fmt.Errorf("schema %d, this build reads %d (open it with a writing command to migrate)", v, SchemaVersion)
			}
			return err
		})
	} else {
		err = migrate(db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Store{db: db, path: path, log: opts.Logger}, nil
}

// validate runs bbolt's page check and decodes every profile record.
func validate(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker goroutine sends every error
			if first == nil {
				first = fmt.Errorf("consistency check: %w", err)
			}
		}
		if first != nil {
			return first
		}
		if b := tx.Bucket(bucketProfiles); b != nil {
			return b.ForEach(func(k, v []byte) error {
				if _, err := decodeProfile(v); err != nil {
					return fmt.Errorf("profile %q: %w", k, err)
				}
				return nil
			})
		}
		return nil
	})
}

func schemaOf(tx *bolt.Tx) (int, error) {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return 0, nil
	}
	v := m.Get(keySchema)
	if v == nil {
		return 0, nil
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("meta/schema: %d bytes, want 4", len(v))
	}
	return int(binary.LittleEndian.Uint32(v)), nil
}

func migrate(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		v, err := schemaOf(tx)
		if err != nil {
			return err
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: schema %d, this build supports up to %d", errNewerSchema, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			m := migrations[v]
			if m == nil {
				return fmt.Errorf("no migration from schema %d", v)
			}
			if err := m(tx); err != nil {
				return fmt.Errorf("migration %d→%d: %w", v, v+1, err)
			}
		}
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], SchemaVersion)
		return tx.Bucket(bucketMeta).Put(keySchema, buf[:])
	})
}

// Path returns the store's file name.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close profile store %s: %w", s.path, err)
	}
	return nil
}

type record struct {
	key string
	val []byte
}

func (s *Store) write(recs []record, dels []string, meta map[string]string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		for k, v := range meta {
			if err := m.Put([]byte(userMetaPrefix+k), []byte(v)); err != nil {
				return fmt.Errorf("meta %q: %w", k, err)
			}
		}
		b := tx.Bucket(bucketProfiles)
		for _, r := range recs {
			if err := b.Put([]byte(r.key), r.val); err != nil {
				return fmt.Errorf("profile %q: %w", r.key, err)
			}
		}
		for _, k := range dels {
			if err := b.Delete([]byte(k)); err != nil {
				return fmt.Errorf("delete profile %q: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint to %s: %w", s.path, err)
	}
	return nil
}

// userMetaPrefix keeps metadata set through Profiler.SetMeta apart from
// the store's own keys in the meta bucket.
const userMetaPrefix = "user/"

// loadMeta returns the metadata set through Profiler.SetMeta.
func (s *Store) loadMeta() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			if len(k) > len(userMetaPrefix) && string(k[:len(userMetaPrefix)]) == userMetaPrefix {
				out[string(k[len(userMetaPrefix):])] = string(v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: meta: %w", s.path, err)
	}
	return out, nil
}

// load decodes every profile, calling fn for each; undecodable records are
// returned as errors (validation at open makes them rare).
func (s *Store) load(fn func(*Profile)) (int, []error) {
	var errs []error
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			pr, err := decodeProfile(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("profile %q: %w", k, err))
				return nil
			}
			fn(pr)
			n++
			return nil
		})
	})
	if err != nil {
		errs = append(errs, err)
	}
	return n, errs
}
