package deploy

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type composeVolume struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
	Bind     struct {
		Propagation    string `yaml:"propagation"`
		CreateHostPath bool   `yaml:"create_host_path"`
	} `yaml:"bind"`
}

type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	NetworkMode string            `yaml:"network_mode"`
	PID         string            `yaml:"pid"`
	Privileged  bool              `yaml:"privileged"`
	CapAdd      []string          `yaml:"cap_add"`
	SecurityOpt []string          `yaml:"security_opt"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []composeVolume   `yaml:"volumes"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

// mount returns the volume of s mounted at target.
func (s composeService) mount(target string) (composeVolume, bool) {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v, true
		}
	}
	return composeVolume{}, false
}

// hostPathOf maps a path inside the container to the repository file behind
// it, through the bind mounts of s (compose sources are relative to deploy/).
func (s composeService) hostPathOf(inside string) (string, bool) {
	for _, v := range s.Volumes {
		if v.Type != "bind" {
			continue
		}
		if inside == v.Target {
			return v.Source, true
		}
		if rel, ok := strings.CutPrefix(inside, v.Target+"/"); ok {
			return filepath.Join(v.Source, rel), true
		}
	}
	return "", false
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestCompose(t *testing.T) {
	var c composeFile
	decodeFile(t, "docker-compose.yml", &c)
	for _, name := range []string{"exporter", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	// Every bind source exists; every named volume is declared.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case "bind":
				if !strings.HasPrefix(v.Source, "/") {
					mustExist(t, "service "+name+" bind source", v.Source)
				}
			case "volume":
				if _, ok := c.Volumes[v.Source]; !ok {
					t.Errorf("service %s: volume %q not declared under volumes:", name, v.Source)
				}
			default:
				t.Errorf("service %s: mount %s has type %q, want bind or volume", name, v.Target, v.Type)
			}
		}
	}

	t.Run("exporter", func(t *testing.T) {
		e := c.Services["exporter"]
		if e.Build == nil {
			t.Fatal("exporter is not built from the repository")
		}
		mustExist(t, "build context", e.Build.Context)
		mustExist(t, "Dockerfile", filepath.Join(e.Build.Context, e.Build.Dockerfile))
		mustExist(t, "main package in build context", filepath.Join(e.Build.Context, "cmd", "nta-exporter"))
		if e.NetworkMode != "host" || e.PID != "host" {
			t.Errorf("network_mode %q, pid %q: both must be host", e.NetworkMode, e.PID)
		}
		for _, c := range []string{"SYS_ADMIN", "SYS_PTRACE", "NET_RAW", "DAC_READ_SEARCH", "NET_ADMIN"} {
			if !e.Privileged && !slices.Contains(e.CapAdd, c) {
				t.Errorf("exporter lacks CAP_%s (README: Privileges)", c)
			}
		}
		want := map[string]string{ // target -> propagation
			"/var/run/docker.sock":  "",
			"/var/run/netns":        "rslave",
			"/var/run/docker/netns": "rslave",
			"/host/proc":            "",
		}
		for target, prop := range want {
			v, ok := e.mount(target)
			if !ok {
				t.Errorf("exporter: nothing mounted at %s", target)
				continue
			}
			if v.Bind.Propagation != prop {
				t.Errorf("exporter: %s propagation %q, want %q", target, v.Bind.Propagation, prop)
			}
		}
		if v, _ := e.mount("/host/proc"); v.Source != "/proc" {
			t.Errorf("/host/proc is %q, want the host's /proc", v.Source)
		}
		if p, _ := flagValue(e.Command, "path.procfs"); p != "/host/proc" {
			t.Errorf("exporter: --path.procfs=%q, want /host/proc", p)
		}
		checkFlags(t, "docker-compose.yml exporter", e.Command)
	})

	t.Run("prometheus", func(t *testing.T) {
		p, e := c.Services["prometheus"], c.Services["exporter"]
		cfgInside, ok := flagValue(p.Command, "config.file")
		if !ok {
			t.Fatal("prometheus: no --config.file")
		}
		cfgHost, ok := p.hostPathOf(cfgInside)
		if !ok {
			t.Fatalf("prometheus: %s is not mounted", cfgInside)
		}
		if filepath.Clean(cfgHost) != filepath.Join("..", "prometheus.yml") {
			t.Errorf("prometheus config is %s, want the repository's prometheus.yml", cfgHost)
		}
		var cfg promConfig
		decodeFile(t, cfgHost, &cfg)
		if len(cfg.RuleFiles) == 0 {
			t.Error("prometheus.yml loads no rule file")
		}
		for _, rf := range cfg.RuleFiles {
			inside := path.Join(path.Dir(cfgInside), rf) // Prometheus resolves rule_files against the config's directory
			host, ok := p.hostPathOf(inside)
			if !ok {
				t.Errorf("rule file %s (%s in the container) is not mounted", rf, inside)
				continue
			}
			mustExist(t, "rule file "+inside, host)
		}
		// Both on the host network: the scrape target is the exporter's port on loopback.
		if p.NetworkMode != "host" || e.NetworkMode != "host" {
			t.Errorf("prometheus network_mode %q: must be host to reach 127.0.0.1:9819", p.NetworkMode)
		}
		exporterPort := "9819"
		if l, ok := flagValue(e.Command, "web.listen-address"); ok {
			_, exporterPort, _ = net.SplitHostPort(l)
		}
		var found bool
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, tg := range st.Targets {
					host, port, err := net.SplitHostPort(tg)
					if err == nil && sc.JobName == "nta" && port == exporterPort && (host == "127.0.0.1" || host == "localhost") {
						found = true
					}
				}
			}
		}
		if !found {
			t.Errorf("prometheus.yml has no job \"nta\" scraping 127.0.0.1:%s (NtaExporterDown uses up{job=\"nta\"})", exporterPort)
		}
	})

	t.Run("alertmanager", func(t *testing.T) {
		a, p := c.Services["alertmanager"], c.Services["prometheus"]
		if a.NetworkMode != "host" {
			t.Errorf("alertmanager network_mode %q: must be host, where prometheus.yml sends alerts", a.NetworkMode)
		}
		cfgInside, ok := flagValue(a.Command, "config.file")
		if !ok {
			t.Fatal("alertmanager: no --config.file")
		}
		cfgHost, ok := a.hostPathOf(cfgInside)
		if !ok {
			t.Fatalf("alertmanager: %s is not mounted", cfgInside)
		}
		mustExist(t, "alertmanager config", cfgHost)
		l, _ := flagValue(a.Command, "web.listen-address")
		_, amPort, _ := net.SplitHostPort(l)
		cfgProm, _ := p.hostPathOf(mustFlag(t, p.Command, "config.file"))
		var cfg struct {
			Alerting struct {
				Alertmanagers []struct {
					StaticConfigs []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"alertmanagers"`
			} `yaml:"alerting"`
		}
		decodeFile(t, cfgProm, &cfg)
		var found bool
		for _, am := range cfg.Alerting.Alertmanagers {
			for _, sc := range am.StaticConfigs {
				found = found || slices.Contains(sc.Targets, "127.0.0.1:"+amPort)
			}
		}
		if !found {
			t.Errorf("prometheus.yml does not send alerts to 127.0.0.1:%s, where Alertmanager listens", amPort)
		}
	})

	t.Run("grafana", func(t *testing.T) {
		g, p := c.Services["grafana"], c.Services["prometheus"]
		if g.NetworkMode != "host" {
			t.Errorf("grafana network_mode %q: must be host to reach Prometheus on 127.0.0.1", g.NetworkMode)
		}
		prov, ok := g.hostPathOf("/etc/grafana/provisioning")
		if !ok {
			t.Fatal("grafana: /etc/grafana/provisioning is not mounted")
		}
		var ds struct {
			Datasources []struct {
				Type string `yaml:"type"`
				URL  string `yaml:"url"`
			} `yaml:"datasources"`
		}
		decodeFile(t, filepath.Join(prov, "datasources", "nta.yml"), &ds)
		l, _ := flagValue(p.Command, "web.listen-address")
		_, promPort, _ := net.SplitHostPort(l)
		if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
			ds.Datasources[0].URL != "http://127.0.0.1:"+promPort {
			t.Errorf("grafana datasource %+v: want one prometheus datasource at http://127.0.0.1:%s", ds.Datasources, promPort)
		}
		var dp struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		decodeFile(t, filepath.Join(prov, "dashboards", "nta.yml"), &dp)
		if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
			t.Fatalf("grafana dashboard providers %+v: want one file provider", dp.Providers)
		}
		dashboards, _ := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
		if len(dashboards) == 0 {
			t.Fatal("no dashboards/*.json: run go run ./dashboards/gen")
		}
		for _, d := range dashboards {
			inside := path.Join(dp.Providers[0].Options.Path, filepath.Base(d))
			if host, ok := g.hostPathOf(inside); !ok || filepath.Clean(host) != filepath.Clean(d) {
				t.Errorf("dashboard %s is not provisioned at %s (got %q)", d, inside, host)
			}
		}
	})
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		text.WriteString(line + "\n")
		if f, ok := strings.CutPrefix(line, "FROM "); ok {
			froms = append(froms, f)
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:") || froms[len(froms)-1] != "scratch" {
		t.Errorf("stages %q: want a golang build stage and a final FROM scratch", froms)
	}
	s := text.String()
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/nta-exporter", "COPY go.mod go.sum ./"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The entrypoint is the file the final stage copies in.
	m := regexp.MustCompile(`COPY --from=\S+ \S+ (\S+)\n(?s:.*)ENTRYPOINT \["([^"]+)"`).FindStringSubmatch(s)
	if m == nil || m[1] != m[2] {
		t.Errorf("ENTRYPOINT does not run the binary copied from the build stage: %q", m)
	}
}

// mustFlag returns the value of --name in args.
func mustFlag(t *testing.T, args []string, name string) string {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		t.Fatalf("no --%s in %v", name, args)
	}
	return v
}
