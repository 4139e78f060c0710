// Command nta-exporter exports the wiring and traffic of a virtualized Linux
// host as Prometheus metrics: network namespaces, bridges, veth pairs,
// Docker networks and containers, per-interface and per-container counters.
//
//	nta-exporter [flags]                 serve /metrics (default)
//	nta-exporter topology [--format F]   print the host topology once
//	nta-exporter analyze FILE            totals and top flows of a pcap/pcapng file
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/tangfeixiong/nta/collector"
	"github.com/tangfeixiong/nta/dockerview"
	"github.com/tangfeixiong/nta/hostnet"
	"github.com/tangfeixiong/nta/libvirtview"
	"github.com/tangfeixiong/nta/natview"
	"github.com/tangfeixiong/nta/ovsview"
)

// defaultListenAddress is nta's port: outside 9090/9093/9100 and the other
// well-known exporter ports.
const defaultListenAddress = ":9819"

// exitUsage is the exit code for bad flags or arguments.
const exitUsage = 2

// options are the flags shared by every command.
type options struct {
	procPath     string
	netnsDirs    []string
	dockerHost   string
	dockerResync time.Duration
	dockerTO     time.Duration
	libvirt      libvirtview.Options
	ovs          ovsview.Options
	nat          natview.Options
	log          promslog.Config
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the chosen command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("nta-exporter", "Prometheus exporter of a virtualized host's network topology and traffic.")
	app.Version(version.Print("nta-exporter"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	// kingpin terminates after --help and --version; record it instead so
	// run chooses the exit code and tests can call run.
	terminated, termCode := false, 0
	app.Terminate(func(code int) { terminated, termCode = true, code })

	var o options
	app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&o.procPath)
	app.Flag("path.netns", "Directories holding namespace files: named (ip netns) first, then Docker sandboxes.").
		Default("/var/run/netns", "/var/run/docker/netns").StringsVar(&o.netnsDirs)
	app.Flag("collector.docker.host", "Docker Engine address; empty uses DOCKER_HOST or unix:///var/run/docker.sock.").
		Default("").StringVar(&o.dockerHost)
	app.Flag("collector.docker.resync", "Full re-list of Docker objects besides the event stream.").Default("30s").DurationVar(&o.dockerResync)
	app.Flag("collector.docker.timeout", "Deadline of each Docker API call.").Default("5s").DurationVar(&o.dockerTO)
	app.Flag("collector.libvirt.socket", "libvirtd's RPC unix socket.").Default("/var/run/libvirt/libvirt-sock").StringVar(&o.libvirt.Socket)
	app.Flag("collector.libvirt.uri", "libvirt connection URI.").Default("qemu:///system").StringVar(&o.libvirt.URI)
	app.Flag("collector.libvirt.resync", "Full re-list of libvirt domains and networks besides the event stream.").Default("30s").DurationVar(&o.libvirt.Resync)
	app.Flag("collector.libvirt.timeout", "Deadline of each libvirt call.").Default("5s").DurationVar(&o.libvirt.Timeout)
	app.Flag("collector.ovs.db", "OVSDB endpoint of ovsdb-server: unix:PATH (or a plain path) or tcp:HOST:PORT.").Default(ovsview.DefaultDB).StringVar(&o.ovs.DB)
	app.Flag("collector.ovs.timeout", "Deadline of each OVSDB call (connect, monitor, echo).").Default("5s").DurationVar(&o.ovs.Timeout)
	app.Flag("collector.ovs.resync", "How often to check that ovsdb-server answers and rebuild the OVS topology from the monitor's cache.").Default("30s").DurationVar(&o.ovs.Resync)
	app.Flag("collector.nat.accounting", "Set net.netfilter.nf_conntrack_acct=1 at start so NAT metrics count bytes and packets (off: connection counts only).").
		Default("false").BoolVar(&o.nat.Accounting)
	app.Flag("collector.nat.peer-budget", "Peer series kept per container; the smallest are folded into peer=\"overflow\".").
		Default("64").IntVar(&o.nat.PeerBudget)
	app.Flag("collector.nat.resync", "Re-dump of the conntrack table (counters of live connections, repair of lost events) besides the event stream.").
		Default("10s").DurationVar(&o.nat.Resync)
	app.Flag("collector.nat.read-buffer", "Receive buffer of the conntrack event socket in bytes (capped by net.core.rmem_max).").
		Default("8388608").IntVar(&o.nat.ReadBuffer)
	o.log = promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, &o.log)

	// Serving is the default command; its flags are top-level so that
	// `nta-exporter --web.listen-address=...` works as with every exporter.
	app.Command("serve", "Serve metrics over HTTP (the default).").Default()
	s := serveFlags{
		web:         kingpinflag.AddFlags(app, defaultListenAddress),
		collectors:  collector.AddFlags(app),
		metricsPath: app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String(),
		maxRequests: app.Flag("web.max-requests", "Maximum number of parallel scrape requests; 0 disables the limit.").Default("40").Int(),
		timeout:     app.Flag("scrape.timeout", "Deadline of one scrape for all collectors; a hung daemon cannot hang a scrape.").Default("10s").Duration(),
		cacheAge:    app.Flag("scrape.host-cache", "Collectors of one scrape share a host scan younger than this.").Default("1s").Duration(),
		idle:        app.Flag("web.idle-timeout", "Close keep-alive connections idle for this long.").Default("2m").Duration(),
	}
	flows := addFlowFlags(app)
	s.flows = flows
	topoCmd := app.Command("topology", "Print the reconstructed host topology once and exit.")
	topoFormat := topoCmd.Flag("format", "Output format: text, json, dot or svg (laid out by the embedded Graphviz).").Default("text").Enum("text", "json", "dot", "svg")
	topoDocker := topoCmd.Flag("docker", "Ask the Docker Engine for containers and networks.").Default("true").Bool()
	topoLibvirt := topoCmd.Flag("libvirt", "Ask libvirtd for VMs and libvirt networks.").Default("true").Bool()
	topoOVS := topoCmd.Flag("ovs", "Ask ovsdb-server for Open vSwitch bridges, ports and interfaces.").Default("true").Bool()

	anCmd := app.Command("analyze", "Read a pcap or pcapng file through the flow decoder and table; print totals and top flows.")
	anFile := anCmd.Arg("file", "pcap or pcapng file (may be gzip-compressed).").Required().String()
	anFormat := anCmd.Flag("format", "Output format: text or json.").Default("text").Enum("text", "json")
	anTop := anCmd.Flag("top", "Number of largest flows to print.").Default("10").Int()
	anGran := anCmd.Flag("granularity", "Flow key: 5tuple, port, host or workload.").Default("5tuple").Enum("5tuple", "full", "port", "host", "workload")

	cmd, err := app.Parse(args)
	switch {
	case terminated: // --help or --version already printed
		return termCode
	case err != nil:
		fmt.Fprintf(stderr, "nta-exporter: error: %v (try --help)\n", badFlag(app, args, err))
		return exitUsage
	}
	logger := promslog.New(&o.log)

	switch cmd {
	case topoCmd.FullCommand():
		return runTopology(o, *topoFormat, topoSources{docker: *topoDocker, libvirt: *topoLibvirt, ovs: *topoOVS}, stdout, logger)
	case anCmd.FullCommand():
		flows.granularity = *anGran
		return runAnalyze(*anFile, *anFormat, *anTop, flows, stdout, stderr)
	default:
		if err := serve(o, s, logger); err != nil {
			if errors.Is(err, errUsage) {
				fmt.Fprintf(stderr, "nta-exporter: error: %s (try --help)\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
				return exitUsage
			}
			logger.Error("exporter stopped", "err", err)
			return 1
		}
		return 0
	}
}

var errUsage = errors.New("bad usage")

// badFlag names the flag whose value err (from app.Parse(args)) rejects:
// kingpin's own messages for a value that does not parse ("time: invalid
// duration", "strconv.ParseFloat: ...") do not say which flag it was. The
// flags are parsed again, each into its own value, to find the first that
// fails; err is returned unchanged when none does or it already names it.
func badFlag(app *kingpin.Application, args []string, err error) error {
	pc, perr := app.ParseContext(args)
	if perr != nil || pc == nil {
		return err
	}
	for _, el := range pc.Elements {
		fc, ok := el.Clause.(*kingpin.FlagClause)
		if !ok || el.Value == nil {
			continue
		}
		name := "--" + fc.Model().Name
		if ferr := fc.Model().Value.Set(*el.Value); ferr != nil {
			if strings.Contains(err.Error(), name) {
				return err
			}
			return fmt.Errorf("%s=%q: %w", name, *el.Value, err)
		}
	}
	return err
}

func newScanner(o options, logger *slog.Logger) *hostnet.Scanner {
	return hostnet.NewScanner(hostnet.Options{ProcPath: o.procPath, NetnsDirs: o.netnsDirs, Logger: logger.With("component", "hostnet")})
}

func newLibvirt(o options, logger *slog.Logger) (*libvirtview.Watcher, error) {
	opts := o.libvirt
	opts.Logger = logger.With("component", "libvirt")
	return libvirtview.New(opts)
}

func newOVS(o options, logger *slog.Logger) (*ovsview.Watcher, error) {
	opts := o.ovs
	opts.Logger = logger.With("component", "ovs")
	return ovsview.New(opts)
}

func newDocker(o options, logger *slog.Logger) (*dockerview.Watcher, error) {
	return dockerview.New(dockerview.Options{Host: o.dockerHost, Resync: o.dockerResync, Timeout: o.dockerTO, Logger: logger.With("component", "docker")})
}

// warnPrivileges says, once at start, which privileges are missing and what
// the operator loses, instead of exporting silently empty data.
func warnPrivileges(procPath string, logger *slog.Logger) {
	missing, err := hostnet.MissingCapabilities(procPath)
	if err != nil {
		logger.Warn("cannot read own capabilities", "err", err)
		return
	}
	if len(missing) > 0 {
		logger.Error("missing privileges: namespaces other than the exporter's own, packet capture and NAT (conntrack) will not be visible — run as root or grant these capabilities",
			"missing", missing)
	}
}
