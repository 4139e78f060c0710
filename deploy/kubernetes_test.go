package deploy

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	yaml "go.yaml.in/yaml/v2"
)

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec yaml.MapSlice `yaml:"spec"`
}

type daemonSetSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			ServiceAccountName string `yaml:"serviceAccountName"`
			HostNetwork        bool   `yaml:"hostNetwork"`
			HostPID            bool   `yaml:"hostPID"`
			Containers         []struct {
				Name  string   `yaml:"name"`
				Image string   `yaml:"image"`
				Args  []string `yaml:"args"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				LivenessProbe   *probe `yaml:"livenessProbe"`
				ReadinessProbe  *probe `yaml:"readinessProbe"`
				SecurityContext struct {
					Privileged   bool `yaml:"privileged"`
					Capabilities struct {
						Add []string `yaml:"add"`
					} `yaml:"capabilities"`
				} `yaml:"securityContext"`
				VolumeMounts []struct {
					Name             string `yaml:"name"`
					MountPath        string `yaml:"mountPath"`
					MountPropagation string `yaml:"mountPropagation"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			Volumes []struct {
				Name     string `yaml:"name"`
				HostPath *struct {
					Path string `yaml:"path"`
				} `yaml:"hostPath"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	ClusterIP string            `yaml:"clusterIP"`
	Selector  map[string]string `yaml:"selector"`
	Ports     []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// respec decodes the generic spec of o into v.
func respec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	b, err := yaml.Marshal(o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s spec: %v", o.Kind, o.Metadata.Name, err)
	}
}

func TestKubernetesManifest(t *testing.T) {
	f, err := os.Open(filepath.Join("kubernetes", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("daemonset.yaml: %v", err)
		}
		if o.Kind == "" {
			continue // empty document
		}
		if o.APIVersion == "" || o.Metadata.Name == "" {
			t.Errorf("object %+v lacks apiVersion or name", o.Metadata)
		}
		objs[o.Kind] = o
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "DaemonSet", "Service"} {
		if _, ok := objs[k]; !ok {
			t.Fatalf("daemonset.yaml has no %s", k)
		}
	}
	ns := objs["Namespace"].Metadata.Name
	for _, k := range []string{"ServiceAccount", "DaemonSet", "Service"} {
		if objs[k].Metadata.Namespace != ns {
			t.Errorf("%s is in namespace %q, want %q", k, objs[k].Metadata.Namespace, ns)
		}
	}

	var ds daemonSetSpec
	respec(t, objs["DaemonSet"], &ds)
	pod := ds.Template.Spec
	if !pod.HostNetwork || !pod.HostPID {
		t.Errorf("hostNetwork %v, hostPID %v: both must be true", pod.HostNetwork, pod.HostPID)
	}
	if pod.ServiceAccountName != objs["ServiceAccount"].Metadata.Name {
		t.Errorf("serviceAccountName %q is not the ServiceAccount %q", pod.ServiceAccountName, objs["ServiceAccount"].Metadata.Name)
	}
	for k, v := range ds.Selector.MatchLabels {
		if ds.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels", k, v)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9819 {
		t.Errorf("ports %+v: want 9819 named metrics", c.Ports)
	}
	for name, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet.Path != "/" || p.HTTPGet.Port != "metrics" {
			t.Errorf("%s probe %+v: want httpGet / on port metrics", name, p)
		}
	}
	for _, cp := range []string{"SYS_ADMIN", "SYS_PTRACE", "NET_RAW", "DAC_READ_SEARCH", "NET_ADMIN"} {
		if !c.SecurityContext.Privileged && !slices.Contains(c.SecurityContext.Capabilities.Add, cp) {
			t.Errorf("container lacks CAP_%s", cp)
		}
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	want := map[string][2]string{ // mountPath -> host path, propagation
		"/var/run/docker.sock":  {"/var/run/docker.sock", ""},
		"/var/run/netns":        {"/var/run/netns", "HostToContainer"},
		"/var/run/docker/netns": {"/var/run/docker/netns", "HostToContainer"},
		"/host/proc":            {"/proc", ""},
	}
	for _, m := range c.VolumeMounts {
		hp, ok := hostPaths[m.Name]
		if !ok {
			t.Errorf("volumeMount %s: no hostPath volume named so", m.Name)
		}
		if w, ok := want[m.MountPath]; ok {
			if hp != w[0] || m.MountPropagation != w[1] {
				t.Errorf("%s: host %q propagation %q, want %q %q", m.MountPath, hp, m.MountPropagation, w[0], w[1])
			}
			delete(want, m.MountPath)
		}
	}
	for mp := range want {
		t.Errorf("nothing mounted at %s", mp)
	}
	if p, _ := flagValue(c.Args, "path.procfs"); p != "/host/proc" {
		t.Errorf("--path.procfs=%q, want /host/proc", p)
	}
	checkFlags(t, "daemonset.yaml", c.Args)

	var svc serviceSpec
	respec(t, objs["Service"], &svc)
	if svc.ClusterIP != "None" {
		t.Errorf("Service clusterIP %q: want None (headless)", svc.ClusterIP)
	}
	for k, v := range svc.Selector {
		if ds.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%s selects no exporter pod", k, v)
		}
	}
	if len(svc.Ports) != 1 || svc.Ports[0].Port != 9819 || svc.Ports[0].TargetPort != "metrics" {
		t.Errorf("Service ports %+v: want 9819 -> metrics", svc.Ports)
	}
	if a := objs["Service"].Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9819" {
		t.Errorf("Service annotations %v: want prometheus.io/scrape and port", a)
	}
}
