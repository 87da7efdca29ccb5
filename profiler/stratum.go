package profiler

import (
	"slices"
	"strings"
)

// Stratum is the kind of file a file feature names, for calibration: a
// category's benign novelties are a mixture — a service's new code path
// loads modules and libraries of its image, runtimes probe kernel files —
// and one threshold for the mixture is set by its noisiest part (a Python
// error handler importing a package) and hides novelties where the
// service never had any (its first read of /etc/shadow). Package model
// calibrates each stratum of the file category on its own singletons
// (docs/scoring.md).
type Stratum uint8

const (
	// StratumData: everything not below, and every write, create, delete
	// and exec: configuration, data, secrets, the service's own files.
	StratumData Stratum = iota
	// StratumCode: reads of the image's code and package data: below
	// /usr, /lib*, /opt, or a module, library or bytecode file anywhere
	// (node_modules, site-packages, *.so, *.py, *.pyc, *.js, *.jar …).
	StratumCode
	// StratumKernel: reads of kernel and runtime interfaces below /proc,
	// /sys and /dev (cgroup limits, overcommit settings, /proc/<pid>/…).
	StratumKernel
	// StratumSecret: any access but exec to credential material: password
	// and sudo files, private keys, SSH and cloud client directories,
	// mounted secrets and service-account tokens, other processes'
	// environments. Services hardly ever touch a new one; a reload through
	// su reading /etc/shadow is its kind of benign novelty.
	StratumSecret
	// NumStrata is the number of strata; not a stratum.
	NumStrata
)

var stratumNames = [NumStrata]string{"data", "code", "kernel", "secret"}

// String returns the stratum's name.
func (s Stratum) String() string {
	if s < NumStrata {
		return stratumNames[s]
	}
	return "unknown"
}

// codeDirs are the trees packages install code and data into.
var codeDirs = []string{"/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/opt/"}

// codeComponents mark module trees wherever they are.
var codeComponents = []string{"/node_modules/", "/site-packages/", "/dist-packages/", "/__pycache__/", "/vendor/bundle/"}

// codeExts are extensions of loadable code and compiled messages.
var codeExts = []string{".so", ".py", ".pyc", ".pyo", ".js", ".mjs", ".cjs", ".node", ".pm", ".rb", ".jar", ".class", ".mo", ".wasm"}

// Credential material (StratumSecret): exact paths, trees, directories
// anywhere, and file names.
var (
	secretFiles = []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/master.passwd",
		"/proc/<pid>/environ", "/proc/self/environ"}
	secretTrees = []string{"/etc/sudoers.d/", "/run/secrets/", "/var/run/secrets/", "/etc/ssl/private/"}
	secretDirs  = []string{"/.ssh/", "/.aws/", "/.kube/", "/.gnupg/", "/.docker/", "/private/"}
	secretNames = []string{"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"}
	secretExts  = []string{".key", ".p12", ".pfx", ".jks", ".keystore"}
)

func secretPath(path string) bool {
	if slices.Contains(secretFiles, path) || anyOf(secretTrees, path, strings.HasPrefix) ||
		anyOf(secretDirs, path, strings.Contains) {
		return true
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	if name == ownName {
		return false
	}
	return anyOf(secretNames, name, strings.HasPrefix) || anyOf(secretExts, name, strings.HasSuffix)
}

// anyOf reports whether match(s, p) holds for one of the patterns.
func anyOf(patterns []string, s string, match func(s, p string) bool) bool {
	for _, p := range patterns {
		if match(s, p) {
			return true
		}
	}
	return false
}

// FileStratum returns the stratum of a file feature's text ("path
// [access]"); features of other categories are StratumData.
func FileStratum(c Category, text string) Stratum {
	if c != CatFile {
		return StratumData
	}
	path, access := splitFileText(text)
	if access != AccessExec && secretPath(path) {
		return StratumSecret
	}
	if access != AccessRead {
		return StratumData
	}
	for _, p := range [...]string{"/proc/", "/sys/", "/dev/"} {
		if strings.HasPrefix(path, p) || path == p[:len(p)-1] {
			return StratumKernel
		}
	}
	if anyOf(codeDirs, path, strings.HasPrefix) || anyOf(codeComponents, path, strings.Contains) {
		return StratumCode
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	for _, x := range codeExts {
		// libssl.so.3 as well as libssl.so
		if i := strings.Index(name, x); i > 0 && (i+len(x) == len(name) || (x == ".so" && name[i+len(x)] == '.')) {
			return StratumCode
		}
	}
	return StratumData
}
