package testinfra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	sigyaml "sigs.k8s.io/yaml"
)

// Apply creates (or replaces) every object of the YAML manifest files, in
// order, and waits for CustomResourceDefinitions to be established. It is
// `kubectl apply` for tests: no three-way merge, no pruning.
func Apply(t T, cfg *rest.Config, files ...string) {
	t.Helper()
	if err := ApplyFiles(context.Background(), cfg, files...); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
}

// ApplyFiles is Apply returning an error (for programs).
func ApplyFiles(ctx context.Context, cfg *rest.Config, files ...string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s document %d: %w", f, i, err)
			}
			if doc == nil {
				continue
			}
			// Round-trip through JSON so numbers and maps have the types unstructured expects.
			yb, _ := yaml.Marshal(doc)
			jb, err := sigyaml.YAMLToJSON(yb)
			if err != nil {
				return fmt.Errorf("%s document %d: %w", f, i, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(jb); err != nil {
				return fmt.Errorf("%s document %d: %w", f, i, err)
			}
			if err := applyOne(ctx, dyn, mapper, u); err != nil {
				return fmt.Errorf("%s document %d (%s %s): %w", f, i, u.GetKind(), u.GetName(), err)
			}
		}
	}
	return nil
}

func applyOne(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	var m *meta.RESTMapping
	var err error
	for try := 0; try < 50; try++ { // a CRD applied just before takes a moment to be served
		m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			break
		}
		mapper.Reset()
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		ri = dyn.Resource(m.Resource).Namespace(ns)
	}
	if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur, gerr := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		u.SetResourceVersion(cur.GetResourceVersion())
		if _, err := ri.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if gvk.Kind == "CustomResourceDefinition" {
		return waitEstablished(ctx, ri, u.GetName())
	}
	return nil
}

func waitEstablished(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Established" && cm["status"] == "True" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("CRD %s not established after 30s", name)
}
