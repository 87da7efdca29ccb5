package testinfra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeVersion is the kube-apiserver release the tests run against.
const KubeVersion = "v1.37.2"

// DefaultKubeCache is where test/e2e/build-kube.sh caches binaries, one
// directory per version.
const DefaultKubeCache = "/var/cache/driftwatch-e2e"

// Kube is a kube-apiserver backed by etcd, both on loopback.
type Kube struct {
	dir        string
	host       string
	token      string
	kubeconfig string
	// apiBin and apiArgs restart kube-apiserver (StopAPIServer, StartAPIServer).
	apiBin  string
	apiArgs []string
	api     *proc
	etcd    *proc
}

// KubeBinDir returns the directory holding kube-apiserver and etcd for
// KubeVersion: $DRIFTWATCH_KUBE_BIN, else DefaultKubeCache/KubeVersion
// ($DRIFTWATCH_E2E_CACHE overrides the cache root). When the binaries are
// missing it runs test/e2e/build-kube.sh (minutes when cold) unless the test
// runs with -short, where it skips.
func KubeBinDir(t T) string {
	t.Helper()
	return kubeBinDir(t, "", apiServerBins)
}

// ClusterBinDir is KubeBinDir for a whole cluster: it also needs
// kube-controller-manager, kube-scheduler, kubelet and kubectl (built by
// `test/e2e/build-kube.sh cluster`; a cold build takes tens of minutes).
func ClusterBinDir(t T) string {
	t.Helper()
	return kubeBinDir(t, "cluster", clusterBins)
}

var (
	apiServerBins = []string{"kube-apiserver", "etcd"}
	clusterBins   = []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"}
)

func kubeBinDir(t T, scriptArg string, bins []string) string {
	t.Helper()
	dir := os.Getenv("DRIFTWATCH_KUBE_BIN")
	if dir == "" {
		cache := os.Getenv("DRIFTWATCH_E2E_CACHE")
		if cache == "" {
			cache = DefaultKubeCache
		}
		dir = filepath.Join(cache, KubeVersion)
	}
	if haveKubeBins(dir, bins) {
		return dir
	}
	if testing.Testing() && testing.Short() {
		if s, ok := t.(interface{ Skipf(string, ...any) }); ok {
			s.Skipf("%s not all cached in %s (run test/e2e/build-kube.sh %s)", strings.Join(bins, ", "), dir, scriptArg)
		}
	}
	script, err := findBuildKube()
	if err != nil {
		t.Fatalf("testinfra: kube binaries missing in %s and %v", dir, err)
	}
	t.Logf("testinfra: building %s %s with %s %s (cold: several minutes each)", strings.Join(bins, ", "), KubeVersion, script, scriptArg)
	var args []string
	if scriptArg != "" {
		args = append(args, scriptArg)
	}
	cmd := exec.Command(script, args...)
	cmd.Env = append(os.Environ(), "KUBE_VERSION="+KubeVersion)
	cmd.Stderr = os.Stderr // progress of a cold build
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testinfra: %s %s: %v", script, scriptArg, err)
	}
	dir = strings.TrimSpace(string(out))
	if !haveKubeBins(dir, bins) {
		t.Fatalf("testinfra: %s printed %q, which lacks one of %s", script, dir, strings.Join(bins, ", "))
	}
	return dir
}

func haveKubeBins(dir string, bins []string) bool {
	for _, b := range bins {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// findBuildKube locates test/e2e/build-kube.sh above the working directory.
func findBuildKube() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		p := filepath.Join(dir, "test", "e2e", "build-kube.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("test/e2e/build-kube.sh not found above the working directory")
		}
		dir = parent
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// KubeAPIServer starts etcd and kube-apiserver on loopback ports (token
// auth, RBAC, --endpoint-reconciler-type=none, the ServiceAccount admission
// plugin disabled, service-account keys generated here), waits for /readyz
// and returns the server. Its token belongs to system:masters.
func KubeAPIServer(t T) *Kube {
	t.Helper()
	return startKube(t, KubeBinDir(t), false)
}

// startKube is KubeAPIServer with the binaries in bin; serviceAccounts
// keeps the ServiceAccount admission plugin (pods get their token volume,
// which a kubelet then fills).
func startKube(t T, bin string, serviceAccounts bool) *Kube {
	t.Helper()
	dir := t.TempDir()
	k := &Kube{dir: dir, token: randHex(16)}

	etcdClient, err1 := freePort()
	etcdPeer, err2 := freePort()
	apiPort, err3 := freePort()
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatalf("testinfra: %v", err)
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	k.etcd = startLogged(t, dir, "etcd", filepath.Join(bin, "etcd"),
		"--name", "default",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		"--unsafe-no-fsync",
	)
	waitHTTP(t, dir, "etcd", etcdURL+"/health", "", 30*time.Second)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testinfra: service-account key: %v", err)
	}
	saKey := filepath.Join(dir, "sa.key")
	saPub := filepath.Join(dir, "sa.pub")
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("testinfra: service-account key: %v", err)
	}
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	if err := os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(k.token+",driftwatch-admin,driftwatch-admin,system:masters\n"), 0o600); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	k.host = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	k.apiBin = filepath.Join(bin, "kube-apiserver")
	k.apiArgs = []string{"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(apiPort),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--endpoint-reconciler-type", "none",
		"--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--allow-privileged=true",
	}
	if !serviceAccounts {
		k.apiArgs = append(k.apiArgs, "--disable-admission-plugins", "ServiceAccount")
	}
	k.StartAPIServer(t)

	k.kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: admin
current-context: test
`, k.host, k.token)
	if err := os.WriteFile(k.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return k
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port and etcd, and waits for /readyz.
func (k *Kube) StartAPIServer(t T) {
	t.Helper()
	if k.api != nil {
		t.Fatalf("testinfra: kube-apiserver already running")
	}
	k.api = startLogged(t, k.dir, "kube-apiserver", k.apiBin, k.apiArgs...)
	waitHTTP(t, k.dir, "kube-apiserver", k.host+"/readyz", k.token, 60*time.Second)
}

// StopAPIServer stops kube-apiserver (SIGKILL: no graceful drain, as a
// crash or a network cut would look to clients); etcd keeps running.
func (k *Kube) StopAPIServer(t T) {
	t.Helper()
	if k.api == nil {
		return
	}
	_ = k.api.cmd.Process.Kill()
	<-k.api.done
	k.api = nil
}

// proc is a server started by startLogged.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process was reaped
}

// startLogged starts a server with output in dir/name.log and stops it at
// cleanup (SIGTERM, then SIGKILL after 10 s).
func startLogged(t T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testinfra: start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitHTTP polls url until it answers 200, failing with the server's log
// tail after timeout.
func waitHTTP(t T, dir, name, url, token string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // self-signed loopback test server
	}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatalf("testinfra: %v", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	logData, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	t.Fatalf("testinfra: %s not ready at %s after %v (last: %s); log:\n%s", name, url, timeout, last, tail(logData, 30))
}

// PIDs returns the process ids of kube-apiserver (0 while stopped) and etcd
// (for resource measurements).
func (k *Kube) PIDs() (apiserver, etcd int) {
	if k.api != nil {
		apiserver = k.api.cmd.Process.Pid
	}
	return apiserver, k.etcd.cmd.Process.Pid
}

// Kubeconfig is the path of a kubeconfig for the admin token.
func (k *Kube) Kubeconfig() string { return k.kubeconfig }

// Host is the API server URL (https://127.0.0.1:PORT).
func (k *Kube) Host() string { return k.host }

// Token is the bearer token of a system:masters user.
func (k *Kube) Token() string { return k.token }

// RESTConfig returns a client config for the admin token (TLS not
// verified: the server's certificate is self-signed on loopback).
func (k *Kube) RESTConfig() *rest.Config {
	return &rest.Config{Host: k.host, BearerToken: k.token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

// Clientset returns a clientset for the admin token.
func (k *Kube) Clientset(t T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatalf("testinfra: clientset: %v", err)
	}
	return cs
}
