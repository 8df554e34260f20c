package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"

	"mailautoconf/internal/config"
)

const k8sDir = "kubernetes"

// manifests is every object in deploy/kubernetes, decoded strictly into the
// Kubernetes API types: an unknown or misspelled field is an error, as it
// is for `kubectl apply --validate=strict`.
type manifests struct {
	namespaces []*corev1.Namespace
	configMaps []*corev1.ConfigMap
	deploys    []*appsv1.Deployment
	services   []*corev1.Service
	pdbs       []*policyv1.PodDisruptionBudget
	hpas       []*autoscalingv2.HorizontalPodAutoscaler
	files      []string // the manifest files, without kustomization.yaml
}

// kinds maps apiVersion/kind to a fresh object of the API type.
var kinds = map[string]func() any{
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
}

// decodeManifests reads one file's YAML documents into API objects.
func decodeManifests(name string, data []byte) ([]any, error) {
	var objs []any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		if err := doc.Decode(&head); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		mk, ok := kinds[head.APIVersion+"/"+head.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: document %d: unexpected %s %s", name, i, head.APIVersion, head.Kind)
		}
		raw, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		obj := mk()
		if err := k8syaml.UnmarshalStrict(raw, obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %w", name, i, head.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, filepath.Base(f))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeManifests(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *corev1.Namespace:
				m.namespaces = append(m.namespaces, o)
			case *corev1.ConfigMap:
				m.configMaps = append(m.configMaps, o)
			case *corev1.Service:
				m.services = append(m.services, o)
			case *appsv1.Deployment:
				m.deploys = append(m.deploys, o)
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.hpas = append(m.hpas, o)
			}
		}
	}
	if len(m.namespaces) != 1 || len(m.configMaps) != 1 || len(m.deploys) != 1 || len(m.services) != 2 ||
		len(m.pdbs) != 1 || len(m.hpas) != 1 {
		t.Fatalf("want 1 Namespace, 1 ConfigMap, 1 Deployment, 2 Services, 1 PodDisruptionBudget, 1 HorizontalPodAutoscaler; "+
			"got %d, %d, %d, %d, %d, %d", len(m.namespaces), len(m.configMaps), len(m.deploys), len(m.services), len(m.pdbs), len(m.hpas))
	}
	return m
}

// The decoder must reject what the API server would: otherwise every
// check below could pass on a manifest that kubectl refuses.
func TestManifestDecoderIsStrict(t *testing.T) {
	for _, c := range []struct{ name, doc string }{
		{"misspelled field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 3}\n"},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n"},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"},
		{"old API version", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeManifests(c.name, []byte(c.doc)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m := loadManifests(t)
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "Kustomization" || k.Namespace != m.namespaces[0].Name {
		t.Errorf("kustomization: kind %q namespace %q", k.Kind, k.Namespace)
	}
	res := slices.Clone(k.Resources)
	sort.Strings(res)
	if !slices.Equal(res, m.files) {
		t.Errorf("kustomization resources %v, files %v", res, m.files)
	}
	// The image override must name the image the pods use.
	d := m.deploys[0]
	for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
		if len(k.Images) != 1 || k.Images[0].Name != c.Image {
			t.Errorf("container %s image %q is not the one kustomization sets (%+v)", c.Name, c.Image, k.Images)
		}
	}
}

func TestManifestsNamespaceAndLabels(t *testing.T) {
	m := loadManifests(t)
	ns := m.namespaces[0]
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s does not enforce the restricted Pod Security Standard", ns.Name)
	}
	var metas []metav1.ObjectMeta
	metas = append(metas, m.configMaps[0].ObjectMeta, m.deploys[0].ObjectMeta, m.pdbs[0].ObjectMeta, m.hpas[0].ObjectMeta)
	for _, s := range m.services {
		metas = append(metas, s.ObjectMeta)
	}
	for _, o := range metas {
		if o.Namespace != ns.Name {
			t.Errorf("%s: namespace %q, want %q", o.Name, o.Namespace, ns.Name)
		}
		if o.Labels["app.kubernetes.io/name"] != "mailautoconf" {
			t.Errorf("%s: no app.kubernetes.io/name label", o.Name)
		}
	}
}

// podLabels returns the Deployment's pod labels, after checking that its
// selector selects them.
func podLabels(t *testing.T, d *appsv1.Deployment) labels.Set {
	t.Helper()
	pl := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() || !sel.Matches(pl) {
		t.Fatalf("Deployment selector %v does not match its pod labels %v", sel, pl)
	}
	return pl
}

func TestDeployment(t *testing.T) {
	m := loadManifests(t)
	d := m.deploys[0]
	podLabels(t, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		t.Errorf("replicas %v, want at least 3", d.Spec.Replicas)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("a rolling update may take replicas away before new ones are ready: %+v", d.Spec.Strategy)
	}
	ps := d.Spec.Template.Spec
	if len(ps.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread: replicas may share one node")
	}
	for _, c := range ps.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("topology spread %s does not select the pods: %v", c.TopologyKey, err)
		}
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("the service never talks to the API server: automountServiceAccountToken should be false")
	}

	// The "restricted" Pod Security Standard, which the namespace enforces.
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pods do not run as a fixed non-root user")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("no RuntimeDefault seccomp profile")
	}
	all := append(slices.Clone(ps.InitContainers), ps.Containers...)
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root file system is writable", c.Name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: capabilities are not dropped", c.Name)
		} else {
			for _, a := range sc.Capabilities.Add {
				if a != "NET_BIND_SERVICE" {
					t.Errorf("%s: adds capability %s", c.Name, a)
				}
			}
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: no memory limit", c.Name)
		}
	}

	c := mainContainer(t, d)
	if c.Resources.Requests.Cpu().IsZero() {
		t.Error("no CPU request: the HorizontalPodAutoscaler's utilization has nothing to divide by")
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if cp := containerPort(c, p.probe.HTTPGet.Port, corev1.ProtocolTCP); cp == nil || cp.Name != "http" {
			t.Errorf("%s probe port %s is not the container's http port", p.name, p.probe.HTTPGet.Port.String())
		}
	}
	for _, ann := range []string{"prometheus.io/port"} {
		v := d.Spec.Template.Annotations[ann]
		if cp := containerPort(c, intstr.Parse(v), corev1.ProtocolTCP); cp == nil || cp.Name != "metrics" {
			t.Errorf("annotation %s=%q is not the metrics port", ann, v)
		}
	}
}

func mainContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "mailautoconf" {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatal("no container named mailautoconf")
	return nil
}

// containerPort finds a port by name or number and protocol.
func containerPort(c *corev1.Container, p intstr.IntOrString, proto corev1.Protocol) *corev1.ContainerPort {
	for i, cp := range c.Ports {
		pr := cp.Protocol
		if pr == "" {
			pr = corev1.ProtocolTCP
		}
		if pr != proto {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return &c.Ports[i]
		}
	}
	return nil
}

// mountFor returns the mount path of the named volume in the container.
func mountFor(t *testing.T, c *corev1.Container, volume string) corev1.VolumeMount {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if vm.Name == volume {
			return vm
		}
	}
	t.Fatalf("container %s does not mount volume %s", c.Name, volume)
	return corev1.VolumeMount{}
}

// podConfig follows the Deployment to the configuration it serves: the
// --config argument, the volume mounted there and the ConfigMap key behind
// it. It writes that file, and the TLS files the config names (from the
// Secret volume), into a temporary directory laid out as in the pod, and
// returns the config's path there.
func podConfig(t *testing.T, m *manifests, c *corev1.Container) (path, text string) {
	t.Helper()
	d := m.deploys[0]
	cfgPath := flagValue(c.Args, "--config")
	if cfgPath == "" {
		t.Fatalf("container %s: no --config in %q", c.Name, c.Args)
	}
	var cmVol, secretVol *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cmVol = &d.Spec.Template.Spec.Volumes[i]
		case v.Secret != nil:
			secretVol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if cmVol == nil || cmVol.ConfigMap.Name != m.configMaps[0].Name {
		t.Fatalf("no volume from ConfigMap %s", m.configMaps[0].Name)
	}
	vm := mountFor(t, c, cmVol.Name)
	if vm.SubPath != "" {
		// Kubernetes never updates subPath mounts: no reload on change.
		t.Errorf("%s: the configuration is mounted with subPath, so ConfigMap updates never reach the pod", c.Name)
	}
	if filepath.Dir(cfgPath) != vm.MountPath {
		t.Fatalf("%s: --config %s is not in the ConfigMap mount %s", c.Name, cfgPath, vm.MountPath)
	}
	text, ok := m.configMaps[0].Data[filepath.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", m.configMaps[0].Name, filepath.Base(cfgPath))
	}

	root := t.TempDir()
	local := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	if secretVol != nil {
		sm := mountFor(t, c, secretVol.Name)
		// The Secret's mount point becomes a directory of test files
		// named like a kubernetes.io/tls Secret's keys.
		writeTestCertificate(t, local(sm.MountPath+"/"+corev1.TLSCertKey), local(sm.MountPath+"/"+corev1.TLSPrivateKeyKey))
		text = strings.ReplaceAll(text, sm.MountPath+"/", local(sm.MountPath)+"/")
	}
	path = local(cfgPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// The ConfigMap holds a configuration the service accepts, its TLS files
// are where the Secret is mounted, and its listeners are the container's
// ports.
func TestConfigMapIsValidConfiguration(t *testing.T) {
	m := loadManifests(t)
	d := m.deploys[0]
	c := mainContainer(t, d)
	path, _ := podConfig(t, m, c)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the ConfigMap's configuration does not validate:\n%v", err)
	}
	if len(cfg.TLS.Certificates) == 0 {
		t.Error("no TLS certificate: HTTPS is what Thunderbird and Outlook try first")
	}
	for _, l := range []struct {
		key, addr string
		ports     []string
	}{
		{"listen.http", cfg.Listen.HTTP, []string{"http/TCP"}},
		{"listen.https", cfg.Listen.HTTPS, []string{"https/TCP"}},
		{"listen.dns", cfg.Listen.DNS, []string{"dns-udp/UDP", "dns-tcp/TCP"}},
		{"listen.metrics", cfg.Listen.Metrics, []string{"metrics/TCP"}},
	} {
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			t.Errorf("%s %q: %v", l.key, l.addr, err)
			continue
		}
		n, _ := strconv.Atoi(port)
		for _, want := range l.ports {
			name, proto, _ := strings.Cut(want, "/")
			cp := containerPort(c, intstr.FromString(name), corev1.Protocol(proto))
			if cp == nil || int(cp.ContainerPort) != n {
				t.Errorf("%s is port %d, but container port %s is %v", l.key, n, want, cp)
			}
			if n < 1024 {
				t.Errorf("%s: port %d needs NET_BIND_SERVICE, which a non-root container does not get", l.key, n)
			}
		}
	}
	// The init container checks the very same file.
	for _, ic := range d.Spec.Template.Spec.InitContainers {
		if len(ic.Args) == 0 || ic.Args[0] != "check" || flagValue(ic.Args, "--config") != flagValue(c.Args, "--config") {
			t.Errorf("init container %s: args %q do not check %s", ic.Name, ic.Args, flagValue(c.Args, "--config"))
		}
	}
}

// The init container's command, run by the real binary on the pod's files.
func TestConfigMapPassesCheck(t *testing.T) {
	m := loadManifests(t)
	d := m.deploys[0]
	if len(d.Spec.Template.Spec.InitContainers) == 0 {
		t.Fatal("no init container checks the configuration")
	}
	ic := &d.Spec.Template.Spec.InitContainers[0]
	path, _ := podConfig(t, m, ic)
	args := slices.Clone(ic.Args)
	args[slices.Index(args, "--config")+1] = path
	out, err := run(t, binary(t), args...)
	if err != nil || !strings.Contains(out, "OK, 1 provider(s), 2 domain(s)") {
		t.Fatalf("mailautoconf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestServices(t *testing.T) {
	m := loadManifests(t)
	d := m.deploys[0]
	pl := podLabels(t, d)
	c := mainContainer(t, d)
	exposed := map[string]bool{}
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(pl) {
			t.Errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, pl)
		}
		for _, p := range s.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			cp := containerPort(c, p.TargetPort, proto)
			if cp == nil {
				t.Errorf("Service %s port %s: target %s/%s is no container port", s.Name, p.Name, p.TargetPort.String(), proto)
				continue
			}
			if cp.Name == "metrics" && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				t.Errorf("Service %s exposes metrics through the load balancer", s.Name)
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				exposed[fmt.Sprintf("%d/%s", p.Port, proto)] = true
			}
		}
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("Service %s hides client addresses (externalTrafficPolicy %q): rate limits would see the node", s.Name, s.Spec.ExternalTrafficPolicy)
		}
	}
	want := []string{"443/TCP", "53/TCP", "53/UDP", "80/TCP"}
	var got []string
	for k := range exposed {
		got = append(got, k)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("load balancer ports %v, want %v", got, want)
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	d, pdb := m.deploys[0], m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() || !sel.Matches(podLabels(t, d)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the Deployment's pods", sel)
	}
	replicas := int(*d.Spec.Replicas)
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if n := pdb.Spec.MaxUnavailable.IntValue(); n < 1 || n >= replicas {
			t.Errorf("maxUnavailable %d with %d replicas", n, replicas)
		}
	case pdb.Spec.MinAvailable != nil:
		if n := pdb.Spec.MinAvailable.IntValue(); n < 1 || n >= replicas {
			t.Errorf("minAvailable %d with %d replicas blocks drains or allows an outage", n, replicas)
		}
	default:
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
}

func TestHorizontalPodAutoscaler(t *testing.T) {
	m := loadManifests(t)
	d, h := m.deploys[0], m.hpas[0]
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("scaleTargetRef %+v is not Deployment %s", ref, d.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != *d.Spec.Replicas || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
		t.Errorf("replicas %v..%d, Deployment %d", h.Spec.MinReplicas, h.Spec.MaxReplicas, *d.Spec.Replicas)
	}
	if len(h.Spec.Metrics) == 0 {
		t.Fatal("no metric to scale on")
	}
	for _, mt := range h.Spec.Metrics {
		if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU {
			if u := mt.Resource.Target.AverageUtilization; u == nil || *u <= 0 || *u > 100 {
				t.Errorf("CPU target utilization %v", u)
			}
		}
	}
}
