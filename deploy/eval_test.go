package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestEvalIndexedJob checks the sharded-eval example: strict decoding,
// an Indexed Job whose completions, parallelism and --shard N agree, each
// pod's shard index from its completion index, and a merge Job listing
// every shard directory the indexed Job writes.
func TestEvalIndexedJob(t *testing.T) {
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	jobs := map[string]*batchv1.Job{}
	for _, f := range []string{"indexed-job.yaml", "merge-job.yaml"} {
		b, err := os.ReadFile(filepath.Join("eval", f))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			doc, _ := yaml.Marshal(&node)
			obj, _, err := strict.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if j, ok := obj.(*batchv1.Job); ok {
				jobs[j.Name] = j
			}
		}
	}
	idx, merge := jobs["driftwatch-eval"], jobs["driftwatch-eval-merge"]
	if idx == nil || merge == nil {
		t.Fatalf("jobs %v", jobs)
	}
	if idx.Spec.CompletionMode == nil || *idx.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatal("driftwatch-eval is not an Indexed Job")
	}
	n := int(*idx.Spec.Completions)
	if idx.Spec.Parallelism == nil || int(*idx.Spec.Parallelism) != n {
		t.Errorf("parallelism %v, completions %d", idx.Spec.Parallelism, n)
	}
	c := idx.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if !strings.Contains(args, fmt.Sprintf("--shard=$(SHARD)/%d", n)) || !strings.Contains(args, "--report=/results/shard-$(SHARD)") {
		t.Errorf("indexed job args %q", args)
	}
	if len(c.Env) == 0 || c.Env[0].Name != "SHARD" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef == nil ||
		!regexp.MustCompile(`job-completion-index`).MatchString(c.Env[0].ValueFrom.FieldRef.FieldPath) {
		t.Errorf("SHARD env %+v", c.Env)
	}
	margs := merge.Spec.Template.Spec.Containers[0].Args
	if len(margs) < 2 || margs[0] != "eval" || margs[1] != "merge" {
		t.Fatalf("merge args %v", margs)
	}
	for i := 0; i < n; i++ {
		if !slices.Contains(margs, fmt.Sprintf("/results/shard-%d", i)) {
			t.Errorf("merge job lacks shard %d: %v", i, margs)
		}
	}
}
