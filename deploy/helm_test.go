// Package deploy_test keeps the Helm chart in deploy/helm true to the
// kustomize manifests in deploy/kubernetes: it renders the chart with
// Helm's own engine and the manifests with kustomize's own library, decodes
// both strictly into the Kubernetes API types, and compares them object by
// object. Helm and kustomize are test-only dependencies: the gateway's
// binary links neither.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = "helm/emma-gateway"
	k8sDir   = "kubernetes"
	release  = "emma-gateway"
	ns       = "emma-gateway"
)

// newObject returns the API type of a manifest's apiVersion and kind (the
// same list as cmd/emma-gateway/deploy_test.go).
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + ", " + kind {
	case "v1, Namespace":
		return &corev1.Namespace{}, nil
	case "v1, ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1, ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1, Secret":
		return &corev1.Secret{}, nil
	case "v1, Service":
		return &corev1.Service{}, nil
	case "apps/v1, StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "policy/v1, PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2, HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "networking.k8s.io/v1, NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	}
	return nil, fmt.Errorf("unexpected apiVersion %q kind %q", apiVersion, kind)
}

// decodeObject decodes one object strictly, as the API server does (the
// approach of cmd/emma-gateway/deploy_test.go): an unknown field, a field
// in the wrong case or a duplicate key is an error.
func decodeObject(data []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, err
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	strict, err := k8sjson.UnmarshalStrict(j, obj, k8sjson.DisallowUnknownFields, k8sjson.DisallowDuplicateFields)
	if err != nil {
		return nil, err
	}
	return obj, errors.Join(strict...)
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeAll decodes a stream of YAML documents into objects keyed
// "Kind/name".
func decodeAll(t *testing.T, where string, stream string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, doc := range docSep.Split(stream, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, err := decodeObject([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, doc)
			continue
		}
		key := keyOf(obj)
		if _, dup := out[key]; dup {
			t.Errorf("%s: two objects %s", where, key)
		}
		out[key] = obj
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func keyOf(obj any) string {
	m := obj.(metav1.ObjectMetaAccessor).GetObjectMeta()
	return fmt.Sprintf("%T/%s", obj, m.GetName())
}

// kustomizeBuild is `kustomize build deploy/kubernetes`, by kustomize's
// library.
func kustomizeBuild(t *testing.T) map[string]any {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	y, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, "kustomize", string(y))
}

// helmTemplate is `helm template release chart --namespace ns -f values`,
// by Helm's library: values are checked against values.schema.json and
// merged over values.yaml as helm does.
func helmTemplate(t *testing.T, name string, values map[string]any) (map[string]any, string, error) {
	t.Helper()
	chrt, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	if err := chrt.Validate(); err != nil {
		t.Fatalf("chart: %v", err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values, chartutil.ReleaseOptions{Name: name, Namespace: ns, IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, "", err
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, "", err
	}
	var stream strings.Builder
	var notes string
	for _, f := range slices.Sorted(maps.Keys(files)) {
		switch {
		case strings.HasSuffix(f, "NOTES.txt"):
			notes = files[f]
		case strings.HasSuffix(f, ".yaml"):
			stream.WriteString("---\n" + files[f] + "\n")
		}
	}
	return decodeAll(t, "helm", stream.String()), notes, nil
}

func mustTemplate(t *testing.T, values map[string]any) map[string]any {
	t.Helper()
	objs, _, err := helmTemplate(t, release, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return objs
}

// helmOnly are what the chart adds to every object's labels (and to its
// selectors, so that two releases in one namespace do not select each
// other's pods) and the pod annotations that roll the pods on a change of
// configuration; kustomize has no such thing.
var helmOnly = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "checksum/config", "checksum/secret"}

// normalized is obj as the JSON the API server would store, without the
// keys of helmOnly, wherever they are.
func normalized(t *testing.T, obj any) any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range helmOnly {
				delete(x, k)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return v
}

func TestHelmDefaultRendersTheKustomizeManifests(t *testing.T) {
	kust := kustomizeBuild(t)
	// The chart creates the namespace only when asked: Helm users pass
	// --create-namespace. Asked, it is kustomize's.
	helm := mustTemplate(t, map[string]any{"namespace": map[string]any{"create": true}})
	if got, want := slices.Sorted(maps.Keys(helm)), slices.Sorted(maps.Keys(kust)); !slices.Equal(got, want) {
		t.Fatalf("helm renders %v\nkustomize builds %v", got, want)
	}
	for _, key := range slices.Sorted(maps.Keys(kust)) {
		if d := cmp.Diff(normalized(t, kust[key]), normalized(t, helm[key])); d != "" {
			t.Errorf("%s differs (-kustomize +helm):\n%s", key, d)
		}
	}
	// The normalization removes only what Helm adds: every label of
	// kustomize's is in the chart's, and the chart's selectors are
	// kustomize's plus the release.
	sts := helm["*v1.StatefulSet/emma-gateway"].(*appsv1.StatefulSet)
	if got := sts.Labels; got["helm.sh/chart"] == "" || got["app.kubernetes.io/instance"] != release || got["app.kubernetes.io/part-of"] != "emma-gateway" {
		t.Errorf("StatefulSet labels %v lack Helm's", got)
	}
	if got := sts.Spec.Selector.MatchLabels; len(got) != 2 || got["app.kubernetes.io/instance"] != release {
		t.Errorf("selector %v: want name and instance only (a selector is immutable: no version in it)", got)
	}
	if ann := sts.Spec.Template.Annotations; len(ann["checksum/config"]) != 64 || len(ann["checksum/secret"]) != 64 {
		t.Errorf("pod annotations %v: want the config and secret checksums", ann)
	}

	without := mustTemplate(t, nil)
	if _, ok := without["*v1.Namespace/emma-gateway"]; ok || len(without) != len(kust)-1 {
		t.Errorf("by default the chart renders %d objects, want kustomize's %d less the Namespace", len(without), len(kust))
	}
}

// TestHelmValues checks what each value changes, on the decoded objects.
func TestHelmValues(t *testing.T) {
	objs := mustTemplate(t, map[string]any{
		"image":    map[string]any{"repository": "registry.example/emma-gateway", "tag": "v1.4.2", "pullPolicy": "IfNotPresent"},
		"replicas": 3,
		"kafka":    map[string]any{"brokers": []any{"b-1.kafka:9096", "b-2.kafka:9096"}, "tls": false, "saslMechanism": ""},
		"spool":    map[string]any{"size": "20Gi", "storageClassName": "fast-ssd", "maxBytes": 16 << 30},
		"secrets": map[string]any{
			"webhookTokens": []any{"token-one-aaaaaaaaaaaaaaaa", "token-two-bbbbbbbbbbbbbbbb"},
			"saslUsername":  "", "saslPassword": "",
			"adminToken": "admin-token-0123456789abcdef",
		},
		"config":      map[string]any{"extra": map[string]any{"EMMA_GATEWAY_DEDUP_WINDOW": "5m"}},
		"autoscaling": map[string]any{"enabled": false},
		"resources":   map[string]any{"requests": map[string]any{"cpu": "500m", "memory": "256Mi"}},
	})
	sts := objs["*v1.StatefulSet/emma-gateway"].(*appsv1.StatefulSet)
	c := sts.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example/emma-gateway:v1.4.2" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	if *sts.Spec.Replicas != 3 {
		t.Errorf("replicas %d", *sts.Spec.Replicas)
	}
	vct := sts.Spec.VolumeClaimTemplates[0].Spec
	if got := vct.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("20Gi")) != 0 || vct.StorageClassName == nil || *vct.StorageClassName != "fast-ssd" {
		t.Errorf("spool claim %v, class %v", got.String(), vct.StorageClassName)
	}
	if got := c.Resources.Requests[corev1.ResourceCPU]; got.Cmp(resource.MustParse("500m")) != 0 {
		t.Errorf("cpu request %s", got.String())
	}
	// Helm merges maps: the limits the user did not name stay the default.
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("256Mi")) != 0 {
		t.Errorf("memory limit %s, want the default 256Mi", got.String())
	}
	cm := objs["*v1.ConfigMap/emma-gateway"].(*corev1.ConfigMap).Data
	want := map[string]string{
		"EMMA_GATEWAY_KAFKA_BROKERS":    "b-1.kafka:9096,b-2.kafka:9096",
		"EMMA_GATEWAY_KAFKA_TLS":        "false",
		"EMMA_GATEWAY_SPOOL_MAX_BYTES":  "17179869184",
		"EMMA_GATEWAY_DEDUP_WINDOW":     "5m",
		"EMMA_GATEWAY_SPOOL_DIR":        "/var/lib/emma-gateway/spool",
		"EMMA_GATEWAY_TOPIC_PARTITIONS": "12",
	}
	for k, v := range want {
		if cm[k] != v {
			t.Errorf("ConfigMap %s = %q, want %q", k, cm[k], v)
		}
	}
	if _, ok := cm["EMMA_GATEWAY_KAFKA_SASL_MECHANISM"]; ok {
		t.Errorf("an empty SASL mechanism is still set")
	}
	sec := objs["*v1.Secret/emma-gateway"].(*corev1.Secret).StringData
	if sec["EMMA_GATEWAY_TOKENS"] != "token-one-aaaaaaaaaaaaaaaa,token-two-bbbbbbbbbbbbbbbb" || sec["EMMA_GATEWAY_ADMIN_TOKEN"] != "admin-token-0123456789abcdef" {
		t.Errorf("Secret %v", sec)
	}
	if _, ok := sec["EMMA_GATEWAY_KAFKA_SASL_PASSWORD"]; ok {
		t.Errorf("an empty SASL password is still set")
	}
	if _, ok := objs["*v2.HorizontalPodAutoscaler/emma-gateway"]; ok {
		t.Errorf("autoscaling disabled, an HPA rendered")
	}
	// No secret value anywhere but the Secret.
	for key, obj := range objs {
		if strings.HasPrefix(key, "*v1.Secret/") {
			continue
		}
		b, _ := json.Marshal(obj)
		for _, s := range []string{"admin-token-0123456789abcdef", "token-one-aaaaaaaaaaaaaaaa"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret value", key)
			}
		}
	}
}

func TestHelmAdminTokenIsOffByDefault(t *testing.T) {
	objs, notes, err := helmTemplate(t, release, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objs["*v1.Secret/emma-gateway"].(*corev1.Secret).StringData["EMMA_GATEWAY_ADMIN_TOKEN"]; ok {
		t.Error("the default Secret sets an admin token")
	}
	if !strings.Contains(notes, "console (/console) is off") || !strings.Contains(notes, "placeholder") {
		t.Errorf("NOTES do not say the console is off and the tokens are placeholders:\n%s", notes)
	}
}

func TestHelmExistingSecretAndReleaseName(t *testing.T) {
	objs, _, err := helmTemplate(t, "edge", map[string]any{"secrets": map[string]any{"create": false, "existingSecret": "from-vault"}})
	if err != nil {
		t.Fatal(err)
	}
	for key := range objs {
		if strings.HasPrefix(key, "*v1.Secret/") {
			t.Errorf("secrets.create=false still renders %s", key)
		}
		if name := key[strings.Index(key, "/")+1:]; !strings.HasPrefix(name, "edge-emma-gateway") {
			t.Errorf("%s is not named after the release", key)
		}
	}
	sts := objs["*v1.StatefulSet/edge-emma-gateway"].(*appsv1.StatefulSet)
	spec := sts.Spec.Template.Spec
	if got := spec.Containers[0].EnvFrom[1].SecretRef.Name; got != "from-vault" {
		t.Errorf("envFrom secret %q, want from-vault", got)
	}
	if sts.Spec.ServiceName != "edge-emma-gateway-headless" || spec.ServiceAccountName != "edge-emma-gateway" {
		t.Errorf("serviceName %q, serviceAccount %q", sts.Spec.ServiceName, spec.ServiceAccountName)
	}
	if _, ok := sts.Spec.Template.Annotations["checksum/secret"]; ok {
		t.Errorf("a checksum of a Secret the chart does not render")
	}
	// Every selector selects the release's pods.
	pods := sts.Spec.Template.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if pods[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	for key, obj := range objs {
		var sel map[string]string
		switch o := obj.(type) {
		case *corev1.Service:
			sel = o.Spec.Selector
		case *policyv1.PodDisruptionBudget:
			sel = o.Spec.Selector.MatchLabels
		case *networkingv1.NetworkPolicy:
			sel = o.Spec.PodSelector.MatchLabels
		default:
			continue
		}
		if !selects(sel) || sel["app.kubernetes.io/instance"] != "edge" {
			t.Errorf("%s selects %v; the pods have %v", key, sel, pods)
		}
	}
	if _, _, err := helmTemplate(t, "edge", map[string]any{"secrets": map[string]any{"create": false}}); err == nil || !strings.Contains(err.Error(), "existingSecret is required") {
		t.Errorf("secrets.create=false without existingSecret: %v", err)
	}
}

func TestHelmRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"short admin token", map[string]any{"secrets": map[string]any{"adminToken": "too-short"}}, "adminToken"},
		{"no brokers", map[string]any{"kafka": map[string]any{"brokers": []any{}}}, "brokers"},
		{"broker without a port", map[string]any{"kafka": map[string]any{"brokers": []any{"kafka.svc"}}}, "brokers"},
		{"spool size not a quantity", map[string]any{"spool": map[string]any{"size": "lots"}}, "size"},
		{"spool max bytes below 1 MiB", map[string]any{"spool": map[string]any{"maxBytes": 1000}}, "maxBytes"},
		{"unknown SASL mechanism", map[string]any{"kafka": map[string]any{"saslMechanism": "GSSAPI"}}, "saslMechanism"},
		{"a comma inside a webhook token", map[string]any{"secrets": map[string]any{"webhookTokens": []any{"a,b"}}}, "webhookTokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := helmTemplate(t, release, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "too-short") {
				t.Errorf("the error repeats the secret value: %v", err)
			}
		})
	}
}

// TestKustomizeAndHelmDecodeStrictly shows that the strict decoder fails on
// the kind of mistake it is there for, so the comparison above stands on
// it.
func TestKustomizeAndHelmDecodeStrictly(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetport: http}]}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP, type: NodePort}\n",
	} {
		if _, err := decodeObject([]byte(bad)); err == nil {
			t.Errorf("decoded without error:\n%s", bad)
		}
	}
	keys := slices.Collect(maps.Keys(kustomizeBuild(t)))
	sort.Strings(keys)
	if len(keys) != 10 {
		t.Errorf("kustomize builds %d objects: %v", len(keys), keys)
	}
}

// TestHelmLint runs `helm lint --strict` by Helm's library: a warning fails
// too (only informational notes, such as the missing icon, pass).
func TestHelmLint(t *testing.T) {
	for _, values := range []map[string]any{nil, {"secrets": map[string]any{"adminToken": "admin-token-0123456789abcdef"}, "namespace": map[string]any{"create": true}}} {
		l := lint.All(chartDir, values, ns, false)
		for _, m := range l.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("helm lint (values %v): %v", values, m)
			} else {
				t.Logf("helm lint: %v", m)
			}
		}
	}
}
