package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/driftwatch/driftwatch/agent/config"
	"github.com/driftwatch/driftwatch/rules"
)

type manifests struct {
	objs     []runtime.Object
	promRule *promRule
	crds     []string // names of the CustomResourceDefinitions
	files    []string
}

// promRule is the part of a PrometheusRule (a CRD, not in client-go's scheme) we check.
type promRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	var m manifests
	for _, f := range files {
		if f == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			doc, err := yaml.Marshal(&node)
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Kind     string
				Metadata struct{ Name string }
			}
			node.Decode(&head)
			if head.Kind == "CustomResourceDefinition" {
				// Not in client-go's scheme; the API server validates it in agent/cluster's tests.
				m.crds = append(m.crds, head.Metadata.Name)
				continue
			}
			if head.Kind == "PrometheusRule" {
				var pr promRule
				d := yaml.NewDecoder(bytes.NewReader(doc))
				d.KnownFields(true)
				if err := d.Decode(&pr); err != nil {
					t.Fatalf("%s: PrometheusRule: %v", f, err)
				}
				m.promRule = &pr
				continue
			}
			obj, _, err := strict.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, head.Kind, err)
			}
			m.objs = append(m.objs, obj)
		}
	}
	return m
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m := load(t)
	var k struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	want := slices.Clone(m.files)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, manifests %v", got, want)
	}
}

func find[T runtime.Object](t *testing.T, m manifests) T {
	t.Helper()
	var zero T
	for _, o := range m.objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	t.Fatalf("no %T in deploy/", zero)
	return zero
}

func TestDaemonSet(t *testing.T) {
	m := load(t)
	ds := find[*appsv1.DaemonSet](t, m)
	spec := ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Error("hostPID is not set")
	}
	if spec.ServiceAccountName != find[*corev1.ServiceAccount](t, m).Name {
		t.Errorf("serviceAccountName %q", spec.ServiceAccountName)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	// The image is the one `make image` writes.
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	repo := regexp.MustCompile(`(?m)^IMAGE_REPO \?= (\S+)$`).FindSubmatch(mk)
	if repo == nil || c.Image != string(repo[1])+":local" || !strings.Contains(string(mk), "$(IMAGE_REPO):local") {
		t.Errorf("image %q is not the one make image builds (%s:local)", c.Image, repo)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged {
		t.Error("the agent must set privileged: false")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("capabilities must drop ALL")
	}
	var add []string
	for _, c := range sc.Capabilities.Add {
		add = append(add, string(c))
	}
	sort.Strings(add)
	if want := []string{"BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_PTRACE"}; !slices.Equal(add, want) {
		t.Errorf("capabilities add %v, want %v (documented in daemonset.yaml)", add, want)
	}
	var nodeEnv bool
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeEnv = true
		}
	}
	if !nodeEnv {
		t.Error("NODE_NAME is not taken from spec.nodeName")
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, want := range []string{"/sys/kernel/btf", "/proc", "/sys/fs/cgroup", "/var/lib/driftwatch"} {
		if !slices.Contains(slices.Collect(maps.Values(hostPaths)), want) {
			t.Errorf("no hostPath volume for %s", want)
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
	}

	// The configuration the DaemonSet runs with must parse and point at its mounts.
	cm := find[*corev1.ConfigMap](t, m)
	cfg, err := config.Parse("configmap agent.yaml", []byte(cm.Data["agent.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Args, "/etc/driftwatch/agent.yaml") || mounts["/etc/driftwatch/agent.yaml"].Name == "" {
		t.Errorf("args %v do not use the mounted config", c.Args)
	}
	for name, p := range map[string]string{"proc_root": cfg.ProcRoot, "cgroup_mount": cfg.CgroupMount, "db": filepath.Dir(cfg.DB), "cri.endpoint": strings.TrimPrefix(cfg.CRI.Endpoint, "unix://")} {
		if !mountedUnder(mounts, p) {
			t.Errorf("config %s = %s is not on a mounted volume", name, p)
		}
	}
	for _, r := range cfg.Rules {
		if !mountedUnder(mounts, r) {
			t.Errorf("rules path %s is not mounted", r)
		}
	}
	_, port, _ := net.SplitHostPort(cfg.MetricsAddr)
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != atoi(port) {
		t.Errorf("container ports %v, metrics_addr %s", c.Ports, cfg.MetricsAddr)
	}
	svc := find[*corev1.Service](t, m)
	if svc.Spec.Ports[0].Port != atoi(port) || svc.Spec.Selector["app.kubernetes.io/name"] != ds.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Errorf("metrics service does not select the agent's metrics port")
	}

	// The site rules in the ConfigMap load on top of the defaults.
	rf := filepath.Join(t.TempDir(), "local-rules.yaml")
	os.WriteFile(rf, []byte(cm.Data["local-rules.yaml"]), 0o600)
	if _, err := rules.NewEngine([]string{rf}, rules.Options{IncludeDefault: true}); err != nil {
		t.Errorf("configmap local-rules.yaml: %v", err)
	}
}

func mountedUnder(mounts map[string]corev1.VolumeMount, p string) bool {
	for mp := range mounts {
		if p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			return true
		}
	}
	return false
}

func atoi(s string) int32 {
	var n int32
	for _, c := range s {
		n = n*10 + int32(c-'0')
	}
	return n
}

// TestRBACGrantsExactlyWhatTheAgentNeeds pins the permissions rbac.yaml
// documents; agent/cluster's API-server tests run the sync as this
// ServiceAccount, which shows they suffice.
func TestRBACGrantsExactlyWhatTheAgentNeeds(t *testing.T) {
	m := load(t)
	grants := func(rules []rbacv1.PolicyRule) []string {
		var out []string
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						s := g + "/" + res + ":" + v
						if len(r.ResourceNames) > 0 {
							s += "@" + strings.Join(r.ResourceNames, ",")
						}
						out = append(out, s)
					}
				}
			}
		}
		sort.Strings(out)
		return out
	}
	cr := find[*rbacv1.ClusterRole](t, m)
	want := []string{
		"/namespaces:get", "/namespaces:list", "/namespaces:watch",
		"/nodes:list", "/nodes:watch",
		"/pods:get", "/pods:list", "/pods:watch",
		"driftwatch.io/imageprofiles:create", "driftwatch.io/imageprofiles:get", "driftwatch.io/imageprofiles:list",
		"driftwatch.io/imageprofiles:update", "driftwatch.io/imageprofiles:watch",
		"driftwatch.io/nodeprofiles:create", "driftwatch.io/nodeprofiles:delete", "driftwatch.io/nodeprofiles:get",
		"driftwatch.io/nodeprofiles:list", "driftwatch.io/nodeprofiles:update", "driftwatch.io/nodeprofiles:watch",
	}
	if got := grants(cr.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole grants\n%v\nwant\n%v", got, want)
	}
	role := find[*rbacv1.Role](t, m)
	wantRole := []string{"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get@driftwatch-profile-merger", "coordination.k8s.io/leases:update@driftwatch-profile-merger"}
	if got := grants(role.Rules); !slices.Equal(got, wantRole) || role.Namespace != "driftwatch" {
		t.Errorf("Role %s/%s grants %v, want %v", role.Namespace, role.Name, got, wantRole)
	}
	sa := find[*corev1.ServiceAccount](t, m)
	crb := find[*rbacv1.ClusterRoleBinding](t, m)
	if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Name != sa.Name || crb.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("binding %+v does not bind %s to %s/%s", crb, cr.Name, sa.Namespace, sa.Name)
	}
	rb := find[*rbacv1.RoleBinding](t, m)
	if rb.RoleRef.Name != role.Name || rb.RoleRef.Kind != "Role" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != sa.Name || rb.Namespace != role.Namespace {
		t.Errorf("role binding %+v does not bind %s to %s/%s", rb, role.Name, sa.Namespace, sa.Name)
	}
	if !slices.Contains(m.crds, "imageprofiles.driftwatch.io") || !slices.Contains(m.crds, "nodeprofiles.driftwatch.io") {
		t.Errorf("CRDs %v", m.crds)
	}
}

// TestPrometheusRuleShape checks the PrometheusRule's fields; its PromQL is
// parsed and checked against the exported metrics in TestPrometheusRulePromQL.
func TestPrometheusRuleShape(t *testing.T) {
	m := load(t)
	if m.promRule == nil {
		t.Fatal("no PrometheusRule")
	}
	if m.promRule.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %s", m.promRule.APIVersion)
	}
	alerts := map[string]bool{}
	for _, g := range m.promRule.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s lacks expr, severity or summary", r.Alert)
			}
		}
	}
	for _, want := range []string{"DriftwatchHighContainerAnomalyScore", "DriftwatchKernelEventLoss"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}
