package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
)

// These tests keep deploy/ true to the binary: every name, port, path and
// value the manifests and the compose file give the gateway is checked
// against what serveFlags, defaultServeConfig and the real server read and
// answer, so that renaming a flag or a route fails here, not in a cluster.

const (
	deployDir = "../../deploy"
	k8sDir    = deployDir + "/kubernetes"
)

// spoolFlag is the flag of the local write-ahead log. While it does not
// exist yet, EMMA_GATEWAY_SPOOL_DIR is accepted in the manifests (it must
// still equal the spool volume's mount path).
const spoolFlag = "spool-dir"

// serveEnv is what the binary reads from the environment: each flag of
// serve by its variable.
func serveEnv() map[string]*flag.Flag {
	cfg := gateway.DefaultConfig()
	fs := gateway.Flags(&cfg, nil)
	m := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { m[fs.EnvOf(f.Name)] = f })
	return m
}

// envName is the variable serve reads for a flag.
func envName(flag string) string {
	cfg := gateway.DefaultConfig()
	return gateway.Flags(&cfg, nil).EnvOf(flag)
}

func spoolFlagExists() bool {
	cfg := gateway.DefaultConfig()
	return gateway.Flags(&cfg, nil).Lookup(spoolFlag) != nil
}

// checkEnvNames reports every variable that the gateway would not read:
// EMMA_GATEWAY_* must be a flag's variable, OTEL_* goes to OpenTelemetry.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := serveEnv()
	for _, n := range names {
		switch {
		case known[n] != nil:
		case strings.HasPrefix(n, "OTEL_"):
		case n == envName(spoolFlag) && !spoolFlagExists():
			t.Logf("%s: %s is set but --%s is not defined yet: only its mount path is checked", where, n, spoolFlag)
		default:
			t.Errorf("%s: %s is not a variable the gateway reads (no such flag of serve, not OTEL_*)", where, n)
		}
	}
}

// effectiveConfig loads env as serve does (gateway.Load): the
// deployment's values must be ones the binary accepts, with real brokers
// and tokens.
func effectiveConfig(t *testing.T, where string, env map[string]string) gateway.Config {
	t.Helper()
	cfg, err := gateway.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Errorf("%s: the gateway rejects the environment: %v", where, err)
	}
	if cfg.Embedded {
		t.Errorf("%s: no EMMA_GATEWAY_KAFKA_BROKERS: the gateway would start its embedded development broker", where)
	}
	if len(cfg.Receiver.Tokens) == 0 && !cfg.Receiver.AllowUnauthenticated {
		t.Errorf("%s: no EMMA_GATEWAY_TOKENS: the gateway refuses to start with real brokers", where)
	}
	return cfg
}

// listenPort is the port of a listen address such as ":8080"; it fails
// when the host is loopback, which other pods or containers cannot reach.
func listenPort(t *testing.T, where, addr string) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: listen address %q: %v", where, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: listens on %q, unreachable from outside its container", where, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s: port of %q: %v", where, addr, err)
	}
	return int32(p)
}

// ---- Kubernetes ----

// kustomization is the part of kustomize's Kustomization that the manifests
// use, decoded strictly too.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// newObject returns the API type of a manifest's apiVersion and kind.
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

// decodeManifest decodes one object strictly, as the API server does: a
// field the API type does not have (a typo, a wrong indentation, a wrong
// case: encoding/json, and so yaml.UnmarshalStrict, would match
// "containerport" to containerPort) or a duplicate key is an error.
func decodeManifest(data []byte) (any, error) {
	if regexp.MustCompile(`(?m)^---`).Match(data) {
		return nil, errors.New("want one object per file")
	}
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

// k8sManifests is deploy/kubernetes, decoded.
type k8sManifests struct {
	kustomization kustomization
	statefulSet   *appsv1.StatefulSet
	services      map[string]*corev1.Service
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	pdb           *policyv1.PodDisruptionBudget
	hpa           *autoscalingv2.HorizontalPodAutoscaler
	netpol        *networkingv1.NetworkPolicy
	serviceAcct   *corev1.ServiceAccount
}

func loadK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	kb, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(kb, &m.kustomization); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if m.kustomization.APIVersion != "kustomize.config.k8s.io/v1beta1" || m.kustomization.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is a %s %s", m.kustomization.APIVersion, m.kustomization.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	var onDisk []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			onDisk = append(onDisk, b)
		}
	}
	listed := slices.Clone(m.kustomization.Resources)
	sort.Strings(listed)
	if !slices.Equal(onDisk, listed) {
		t.Errorf("kustomization resources %v, but the directory holds %v", listed, onDisk)
	}
	kinds := map[string]bool{}
	for _, name := range onDisk {
		b, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeManifest(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if kind := fmt.Sprintf("%T", obj); kinds[kind] && kind != "*v1.Service" && kind != "*v1.ConfigMap" && kind != "*v1.Secret" {
			t.Errorf("%s: a second %s", name, kind)
		} else {
			kinds[kind] = true
		}
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			m.statefulSet = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			m.pdb = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpa = o
		case *networkingv1.NetworkPolicy:
			m.netpol = o
		case *corev1.ServiceAccount:
			m.serviceAcct = o
		}
	}
	if m.statefulSet == nil || m.pdb == nil || m.hpa == nil || m.netpol == nil || m.serviceAcct == nil {
		t.Fatalf("want a StatefulSet, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy and ServiceAccount; have %+v", m)
	}
	if n := len(m.statefulSet.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("the StatefulSet has %d containers, want 1", n)
	}
	return m
}

// containerEnv is the gateway container's environment: the ConfigMaps and
// Secrets of envFrom, then env (which wins), with where each came from.
func (m *k8sManifests) containerEnv(t *testing.T) (env map[string]string, from map[string]string) {
	t.Helper()
	c := m.statefulSet.Spec.Template.Spec.Containers[0]
	env, from = map[string]string{}, map[string]string{}
	set := func(k, v, src string) { env[k], from[k] = v, src }
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := m.configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				t.Errorf("envFrom names ConfigMap %q, which the manifests lack", ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				set(k, v, "ConfigMap")
			}
		case ef.SecretRef != nil:
			s := m.secrets[ef.SecretRef.Name]
			if s == nil {
				t.Errorf("envFrom names Secret %q, which the manifests lack", ef.SecretRef.Name)
				continue
			}
			for k, v := range s.StringData {
				set(k, v, "Secret")
			}
			for k, v := range s.Data {
				set(k, string(v), "Secret")
			}
		}
	}
	helpers := map[string]bool{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, e.Value, "env")
		case e.ValueFrom.FieldRef != nil:
			helpers[e.Name] = true
			set(e.Name, "", "fieldRef")
		case e.ValueFrom.SecretKeyRef != nil:
			s := m.secrets[e.ValueFrom.SecretKeyRef.Name]
			if s == nil {
				t.Errorf("env %s: no Secret %q", e.Name, e.ValueFrom.SecretKeyRef.Name)
				continue
			}
			set(e.Name, s.StringData[e.ValueFrom.SecretKeyRef.Key], "Secret")
		default:
			t.Errorf("env %s: unexpected valueFrom", e.Name)
		}
	}
	// Downward-API variables are fine when another variable uses them.
	for h := range helpers {
		used := false
		for _, e := range c.Env {
			used = used || strings.Contains(e.Value, "$("+h+")")
		}
		if !used {
			t.Errorf("env %s is read by nobody", h)
		}
		delete(env, h)
	}
	return env, from
}

// containerPort resolves a probe's or a Service's target port, by name or
// number, to the container's port.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Errorf("port %s is not a port of the container", p.String())
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestKubernetesManifestsMatchTheBinary decodes every manifest strictly
// and checks the names, values, ports and mounts the gateway reads.
func TestKubernetesManifestsMatchTheBinary(t *testing.T) {
	t.Parallel()
	m := loadK8s(t)
	sts := m.statefulSet
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]

	env, from := m.containerEnv(t)
	checkEnvNames(t, "StatefulSet", sortedKeys(env))
	cfg := effectiveConfig(t, "StatefulSet", env)

	t.Run("secrets come from the Secret, with marked placeholders", func(t *testing.T) {
		for name, f := range serveEnv() {
			switch f.Value.(type) {
			case *cli.Secret, *cli.SecretList:
				if src, ok := from[name]; ok && src != "Secret" {
					t.Errorf("%s (a secret) is set from a %s", name, src)
				}
			}
		}
		for _, name := range []string{"EMMA_GATEWAY_TOKENS", "EMMA_GATEWAY_KAFKA_SASL_USERNAME", "EMMA_GATEWAY_KAFKA_SASL_PASSWORD"} {
			if from[name] != "Secret" {
				t.Errorf("%s should come from the Secret, comes from %q", name, from[name])
			}
		}
		for _, s := range m.secrets {
			if len(s.Data) > 0 {
				t.Errorf("Secret %s: use stringData with REPLACE-ME placeholders, not data", s.Name)
			}
			for k, v := range s.StringData {
				if !strings.HasPrefix(v, "REPLACE-ME") {
					t.Errorf("Secret %s: %s is not a marked placeholder (REPLACE-ME...)", s.Name, k)
				}
			}
		}
	})

	port := listenPort(t, "StatefulSet --addr", cfg.Receiver.Addr)
	t.Run("ports", func(t *testing.T) {
		if got := containerPort(t, c, intstr.FromString("http")); got != port {
			t.Errorf("container port http is %d; the gateway listens on %d (--addr %q)", got, port, cfg.Receiver.Addr)
		}
		for _, svc := range m.services {
			for _, sp := range svc.Spec.Ports {
				if got := containerPort(t, c, sp.TargetPort); got != port {
					t.Errorf("Service %s targets %d, not the gateway's %d", svc.Name, got, port)
				}
			}
			for k, v := range svc.Spec.Selector {
				if pod := sts.Spec.Template.Labels[k]; pod != v {
					t.Errorf("Service %s selects %s=%s; the pods have %q", svc.Name, k, v, pod)
				}
			}
		}
		if a := sts.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(port)) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("Prometheus annotations %v, want scrape true, port %d, path /metrics", a, port)
		}
	})

	t.Run("governing headless service", func(t *testing.T) {
		h := m.services[sts.Spec.ServiceName]
		if h == nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("serviceName %q is not a headless Service of the manifests", sts.Spec.ServiceName)
		}
		if len(m.services) < 2 {
			t.Errorf("want a ClusterIP Service besides the headless one")
		}
	})

	t.Run("probes are routes the server answers", func(t *testing.T) {
		probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		paths := map[string]string{}
		for _, kind := range sortedKeys(probes) {
			p := probes[kind]
			if p == nil || p.HTTPGet == nil {
				t.Errorf("no HTTP %s probe", kind)
				continue
			}
			if got := containerPort(t, c, p.HTTPGet.Port); got != port {
				t.Errorf("%s probe on port %d, the gateway listens on %d", kind, got, port)
			}
			paths[kind] = p.HTTPGet.Path
		}
		if paths["readiness"] == paths["liveness"] {
			t.Errorf("liveness and readiness probe the same path %q: a Kafka outage would restart every replica", paths["liveness"])
		}
		tg := startTestGateway(t, nil)
		get := func(path string) int {
			res, err := http.Get(tg.url + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		for kind, path := range paths {
			if code := get(path); code != http.StatusOK {
				t.Errorf("%s probe GET %s: %d, want 200", kind, path, code)
			}
		}
		if code := get(paths["liveness"] + "-misspelled"); code == http.StatusOK {
			t.Errorf("a path the server lacks answers %d: this check could not fail", code)
		}
		// Liveness must not depend on Kafka: it stays 200 with the broker gone.
		_ = tg.broker.Shutdown(context.Background())
		if code := get(paths["liveness"]); code != http.StatusOK {
			t.Errorf("liveness GET %s with Kafka down: %d, want 200", paths["liveness"], code)
		}
	})

	t.Run("spool on a claim per replica", func(t *testing.T) {
		claims := map[string]bool{}
		for _, vct := range sts.Spec.VolumeClaimTemplates {
			claims[vct.Name] = true
		}
		var mounts []string
		for _, vm := range c.VolumeMounts {
			if claims[vm.Name] {
				mounts = append(mounts, vm.MountPath)
			}
		}
		if len(mounts) != 1 {
			t.Fatalf("want one volumeClaimTemplate mounted in the container, have mounts %v", mounts)
		}
		dir, ok := env[envName(spoolFlag)]
		if !ok || dir != mounts[0] {
			t.Errorf("%s is %q, the claim is mounted at %q", envName(spoolFlag), dir, mounts[0])
		}
		if cfg.Kafka.Spool.Dir != mounts[0] {
			t.Errorf("the gateway's --%s is %q, the claim is mounted at %q", spoolFlag, cfg.Kafka.Spool.Dir, mounts[0])
		}
		if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("a scaled-away replica's spool must be retained, policy %+v", p)
		}
	})

	t.Run("security context", func(t *testing.T) {
		sc, psc := c.SecurityContext, pod.SecurityContext
		if sc == nil || psc == nil {
			t.Fatal("no securityContext")
		}
		is := func(b *bool) bool { return b != nil && *b }
		if !is(sc.ReadOnlyRootFilesystem) || !is(sc.RunAsNonRoot) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container securityContext %+v: want readOnlyRootFilesystem, runAsNonRoot, no privilege escalation", sc)
		}
		if sc.RunAsUser == nil || *sc.RunAsUser != 65532 || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
			t.Errorf("want runAsUser 65532 (distroless nonroot), the image's USER")
		}
		if psc.FSGroup == nil || *psc.FSGroup != 65532 {
			t.Errorf("want fsGroup 65532 so that the spool volume is writable")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities %+v, want drop ALL", sc.Capabilities)
		}
		for _, s := range []*corev1.SeccompProfile{sc.SeccompProfile, psc.SeccompProfile} {
			if s == nil || s.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccompProfile %+v, want RuntimeDefault", s)
			}
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || pod.ServiceAccountName != m.serviceAcct.Name {
			t.Errorf("want the ServiceAccount %s without an API token", m.serviceAcct.Name)
		}
	})

	t.Run("graceful shutdown fits the grace period", func(t *testing.T) {
		var preStop time.Duration
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if pod.TerminationGracePeriodSeconds == nil {
			t.Fatal("no terminationGracePeriodSeconds")
		}
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		if grace <= preStop+cfg.ShutdownTimeout {
			t.Errorf("terminationGracePeriodSeconds %s, not longer than preStop %s + shutdown timeout %s", grace, preStop, cfg.ShutdownTimeout)
		}
	})

	t.Run("resources", func(t *testing.T) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okr := c.Resources.Requests[r]
			lim, okl := c.Resources.Limits[r]
			if !okr || !okl || req.Cmp(lim) > 0 {
				t.Errorf("%s: request %v limit %v: want both, request <= limit", r, req.String(), lim.String())
			}
		}
	})

	t.Run("disruption budget and autoscaler", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("PodDisruptionBudget selector: %v", err)
		}
		if !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			t.Errorf("the PodDisruptionBudget does not select the pods")
		}
		h := m.hpa.Spec
		if h.ScaleTargetRef.Kind != "StatefulSet" || h.ScaleTargetRef.Name != sts.Name || h.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("the autoscaler targets %+v, not the StatefulSet %s", h.ScaleTargetRef, sts.Name)
		}
		cpu := false
		for _, mt := range h.Metrics {
			cpu = cpu || (mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU)
		}
		if !cpu {
			t.Errorf("the autoscaler does not scale on CPU")
		}
		if h.MinReplicas == nil || *h.MinReplicas < 2 {
			t.Errorf("minReplicas %v: want at least 2 so that a disruption leaves one replica", h.MinReplicas)
		}
	})

	t.Run("network policy", func(t *testing.T) {
		np := m.netpol.Spec
		sel, _ := metav1.LabelSelectorAsSelector(&np.PodSelector)
		if sel.Empty() || !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			t.Errorf("the NetworkPolicy does not select the pods")
		}
		var in []int32
		for _, r := range np.Ingress {
			for _, p := range r.Ports {
				in = append(in, containerPort(t, c, *p.Port))
			}
		}
		if !slices.Equal(in, []int32{port}) {
			t.Errorf("ingress allowed to ports %v, want only the gateway's %d", in, port)
		}
		out := map[string]bool{}
		for _, r := range np.Egress {
			for _, p := range r.Ports {
				out[fmt.Sprintf("%s/%d", *p.Protocol, p.Port.IntVal)] = true
			}
		}
		want := []string{"UDP/53", "TCP/53", "TCP/9092", "TCP/9093", "TCP/4317", "TCP/4318"}
		for _, b := range cfg.Kafka.Brokers {
			_, p, _ := net.SplitHostPort(b)
			want = append(want, "TCP/"+p)
		}
		if ep := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; ep != "" {
			u, err := url.Parse(ep)
			if err != nil || u.Port() == "" {
				t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q has no port", ep)
			} else {
				want = append(want, "TCP/"+u.Port())
			}
		}
		for _, w := range want {
			if !out[w] {
				t.Errorf("egress to %s is not allowed", w)
			}
		}
	})

	t.Run("image", func(t *testing.T) {
		found := false
		for _, im := range m.kustomization.Images {
			found = found || im.Name == c.Image
		}
		if !found {
			t.Errorf("container image %q is not set by the kustomization's images", c.Image)
		}
	})
}

// TestStrictDecodingRejectsMisspelledFields proves that the decoding above
// catches a typo: the real StatefulSet with one field misspelled fails.
func TestStrictDecodingRejectsMisspelledFields(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(k8sDir, "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeManifest(b); err != nil {
		t.Fatalf("the real StatefulSet fails: %v", err)
	}
	for _, typo := range [][2]string{
		{"readinessProbe:", "readynessProbe:"},
		{"containerPort:", "containerport:"},
		{"readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"terminationGracePeriodSeconds:", "terminationGracePeriod:"},
	} {
		bad := bytes.Replace(b, []byte(typo[0]), []byte(typo[1]), 1)
		if bytes.Equal(bad, b) {
			t.Fatalf("statefulset.yaml has no %s", typo[0])
		}
		if _, err := decodeManifest(bad); err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(typo[1], ":")) {
			t.Errorf("%s misspelled %s: decoded without the expected error (%v)", typo[0], typo[1], err)
		}
	}
}

// ---- docker compose ----

func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	// A fixed, empty environment: the file must not depend on the caller's.
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("emma-gateway", true) })
}

func envOf(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

// publishes reports whether the service publishes container port p.
func publishes(s types.ServiceConfig, p int32) bool {
	for _, pc := range s.Ports {
		if pc.Target == uint32(p) && pc.Published != "" {
			return true
		}
	}
	return false
}

// TestComposeStackMatchesTheBinary loads deploy/compose.yaml with the
// compose loader (schema-validated) and checks the wiring of the stack
// against what the gateway reads.
func TestComposeStackMatchesTheBinary(t *testing.T) {
	p, err := loadCompose(t, filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	svc := map[string]types.ServiceConfig{}
	for _, name := range []string{"kafka", "gateway", "jaeger", "emulator"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		svc[name] = s
	}
	for name, s := range p.Services {
		if s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("service %s: image %q is not pinned by tag", name, s.Image)
		}
	}

	gw := svc["gateway"]
	repo, _ := filepath.Abs("../..")
	if gw.Build == nil || gw.Build.Context != repo || gw.Build.Dockerfile != "deploy/Dockerfile" {
		t.Fatalf("gateway build %+v: want context %s, dockerfile deploy/Dockerfile", gw.Build, repo)
	}
	if len(gw.Command) > 0 && gw.Command[0] != "serve" {
		t.Errorf("gateway command %v", gw.Command)
	}
	env := envOf(gw)
	checkEnvNames(t, "compose gateway", sortedKeys(env))
	cfg := effectiveConfig(t, "compose gateway", env)
	port := listenPort(t, "compose gateway --addr", cfg.Receiver.Addr)
	if !publishes(gw, port) {
		t.Errorf("the gateway's port %d is not published", port)
	}

	t.Run("gateway reaches kafka on an advertised listener", func(t *testing.T) {
		k := envOf(svc["kafka"])
		if !strings.HasPrefix(svc["kafka"].Image, "apache/kafka:") || !strings.Contains(k["KAFKA_PROCESS_ROLES"], "controller") {
			t.Errorf("kafka: want apache/kafka in KRaft mode (process roles %q)", k["KAFKA_PROCESS_ROLES"])
		}
		advertised := map[string]string{} // host:port -> listener
		for _, l := range strings.Split(k["KAFKA_ADVERTISED_LISTENERS"], ",") {
			name, hp, ok := strings.Cut(strings.TrimSpace(l), "://")
			if ok {
				advertised[hp] = name
			}
		}
		for _, b := range cfg.Kafka.Brokers {
			host, bp, _ := net.SplitHostPort(b)
			listener, ok := advertised[b]
			if host != "kafka" || !ok {
				t.Errorf("broker %s: not a listener the kafka service advertises (%v)", b, advertised)
				continue
			}
			if !strings.Contains(k["KAFKA_LISTENERS"], listener+"://:"+bp) {
				t.Errorf("kafka does not listen on %s://:%s (%s)", listener, bp, k["KAFKA_LISTENERS"])
			}
		}
		if gw.DependsOn["kafka"].Condition != types.ServiceConditionHealthy || svc["kafka"].HealthCheck == nil {
			t.Errorf("the gateway should wait for a healthy kafka")
		}
	})

	t.Run("traces go to jaeger over OTLP", func(t *testing.T) {
		if env["OTEL_SERVICE_NAME"] != "emma-gateway" {
			t.Errorf("OTEL_SERVICE_NAME %q", env["OTEL_SERVICE_NAME"])
		}
		u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		if err != nil || u.Hostname() != "jaeger" || u.Port() != "4318" {
			t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: want jaeger's OTLP/HTTP port 4318", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
		j := svc["jaeger"]
		if !strings.HasPrefix(j.Image, "jaegertracing/all-in-one:") || envOf(j)["COLLECTOR_OTLP_ENABLED"] != "true" || !publishes(j, 16686) {
			t.Errorf("jaeger: want all-in-one with COLLECTOR_OTLP_ENABLED=true and its UI (16686) published")
		}
	})

	t.Run("spool on a volume", func(t *testing.T) {
		dir := env[envName(spoolFlag)]
		vol := false
		for _, v := range gw.Volumes {
			vol = vol || (v.Type == types.VolumeTypeVolume && v.Target == dir)
		}
		if dir == "" || !vol {
			t.Errorf("%s %q is not a named volume's mount (%+v)", envName(spoolFlag), dir, gw.Volumes)
		}
		if cfg.Kafka.Spool.Dir != dir {
			t.Errorf("--%s is %q, want %q", spoolFlag, cfg.Kafka.Spool.Dir, dir)
		}
		if !gw.ReadOnly {
			t.Errorf("the gateway's root file system should be read-only, as in Kubernetes")
		}
	})

	t.Run("the emulator plays Emma with the same image", func(t *testing.T) {
		em := svc["emulator"]
		if em.Image != gw.Image || em.Build == nil || em.Build.Context != gw.Build.Context || em.Build.Dockerfile != gw.Build.Dockerfile {
			t.Errorf("the emulator should run the gateway's image (%s, %+v)", em.Image, em.Build)
		}
		if len(em.Command) == 0 || em.Command[0] != "emulate" {
			t.Fatalf("emulator command %v, want emulate ...", em.Command)
		}
		addr := ""
		for i, a := range em.Command {
			if (a == "--addr" || a == "-addr") && i+1 < len(em.Command) {
				addr = em.Command[i+1]
			}
		}
		emPort := listenPort(t, "emulator --addr", addr)
		if !publishes(em, emPort) {
			t.Errorf("the emulator's port %d is not published", emPort)
		}
		checkEmulateFlags(t, em.Command[1:])

		// The registration names the gateway's webhook route, a token the
		// gateway accepts, and the emulator's API.
		reg, err := p.GetService("register")
		if err != nil {
			t.Fatal(err)
		}
		script := strings.Join(reg.Command, " ")
		hook := regexp.MustCompile(`http://gateway:(\d+)/webhooks/emma/([^"\\ ]+)`).FindStringSubmatch(script)
		if hook == nil || hook[1] != strconv.Itoa(int(port)) || !slices.Contains(cfg.Receiver.Tokens, hook[2]) {
			t.Errorf("register: webhook URL %v: want http://gateway:%d/webhooks/emma/{a token of EMMA_GATEWAY_TOKENS}", hook, port)
		}
		if !strings.Contains(script, fmt.Sprintf("http://emulator:%d/", emPort)) {
			t.Errorf("register does not call the emulator on its port %d", emPort)
		}
		if creds := emulator.DefaultPublicKey + ":" + emulator.DefaultPrivateKey; !strings.Contains(script, "-u "+creds+" ") {
			t.Errorf("register does not authenticate with the emulator's API keys %s", creds)
		}
	})
}

// checkEmulateFlags checks that every flag the compose file gives
// `emulate` is one that its -h lists. Until the subcommand exists, it can
// only say so.
func checkEmulateFlags(t *testing.T, args []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run([]string{"emulate", "-h"}, &stdout, &stderr)
	if code == 2 && strings.Contains(stderr.String(), "unknown command") {
		t.Logf("emma-gateway has no emulate command yet: its flags %v are not checked", args)
		return
	}
	help := stdout.String() + stderr.String()
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
			t.Errorf("emulate has no flag -%s (its -h:\n%s)", name, help)
		}
	}
}

// TestComposeLoaderRejectsMisspelledFields proves the compose check can
// fail: the schema validation refuses a misspelled service field.
func TestComposeLoaderRejectsMisspelledFields(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(b, []byte("    environment:\n      EMMA_GATEWAY_KAFKA_BROKERS"), []byte("    enviroment:\n      EMMA_GATEWAY_KAFKA_BROKERS"), 1)
	if bytes.Equal(bad, b) {
		t.Fatal("compose.yaml has no gateway environment to misspell")
	}
	f := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(f, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(t, f); err == nil || !strings.Contains(err.Error(), "enviroment") {
		t.Errorf("a misspelled field loaded without the expected error: %v", err)
	}
}

// ---- image and build ----

// TestImageAndCIBuildWithTheSameScript keeps one build command: the
// Dockerfile's build stage and .ci/run both run deploy/build.sh, which
// stamps the version it is given.
func TestImageAndCIBuildWithTheSameScript(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dockerfile := read(filepath.Join(deployDir, "Dockerfile"))
	ci := read("../../.ci/run")

	// The build stage is everything before the last FROM.
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatchIndex(dockerfile, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage Dockerfile, have %d stages", len(froms))
	}
	last := froms[len(froms)-1]
	build, runtime := dockerfile[:last[0]], dockerfile[last[0]:]
	runsScript := regexp.MustCompile(`(?m)^RUN\b[^\n]*(\\\n[^\n]*)*\bbash deploy/build\.sh\b`)
	if !runsScript.MatchString(build) {
		t.Errorf("the Dockerfile's build stage does not RUN bash deploy/build.sh")
	}
	if !regexp.MustCompile(`(?m)^bash deploy/build\.sh `).MatchString(ci) {
		t.Errorf(".ci/run does not build with bash deploy/build.sh")
	}
	for what, s := range map[string]string{"Dockerfile": dockerfile, ".ci/run": ci} {
		if strings.Contains(s, "go build") {
			t.Errorf("%s runs go build itself: keep the one command in deploy/build.sh", what)
		}
	}

	image := dockerfile[last[2]:last[3]]
	if !strings.HasPrefix(image, "gcr.io/distroless/static") || !strings.HasSuffix(image, ":nonroot") {
		t.Errorf("runtime image %q: want distroless static, nonroot, pinned by tag", image)
	}
	if !regexp.MustCompile(`(?m)^USER 65532(:65532)?$`).MatchString(runtime) {
		t.Errorf("the runtime stage does not run as USER 65532, the uid the manifests require")
	}
	if regexp.MustCompile(`(?mi)^HEALTHCHECK\b`).MatchString(dockerfile) {
		t.Errorf("no HEALTHCHECK: the orchestrator probes /healthz and /readyz")
	}
	cfg := gateway.DefaultConfig()
	port := listenPort(t, "default --addr", cfg.Receiver.Addr)
	if !regexp.MustCompile(`(?m)^EXPOSE ` + strconv.Itoa(int(port)) + `$`).MatchString(runtime) {
		t.Errorf("the image does not EXPOSE the default --addr port %d", port)
	}

	script := read(filepath.Join(deployDir, "build.sh"))
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(script, want) {
			t.Errorf("deploy/build.sh lacks %s", want)
		}
	}
	// And it works: the binary it builds reports the version it was given.
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	out := filepath.Join(t.TempDir(), "emma-gateway")
	if b, err := exec.Command("bash", filepath.Join(deployDir, "build.sh"), out, "v0.0.0-deploytest").CombinedOutput(); err != nil {
		t.Fatalf("deploy/build.sh: %v\n%s", err, b)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "emma-gateway v0.0.0-deploytest") {
		t.Errorf("the built binary says %q (%v)", b, err)
	}
}
