package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tangfeixiong/nta/flowagg/pcapfile"
)

// runAnalyze reads a pcap/pcapng file through the live decoder and flow
// table and prints totals and top flows. A damaged file prints the totals
// up to the damage, then the error, and exits 1; a file that is not a
// capture prints only the error. Errors are plain lines on errOut, as for
// any command-line tool.
func runAnalyze(path, format string, top int, f *flowFlags, out, errOut io.Writer) int {
	cfg, err := f.aggregatorConfig()
	if err != nil {
		fmt.Fprintf(errOut, "nta-exporter analyze: --granularity: %v\n", err)
		return exitUsage
	}
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(errOut, "nta-exporter analyze: %v — give a pcap or pcapng file (tcpdump -w, dumpcap)\n", err)
		return 1
	}
	defer file.Close()
	// Offline: no budget beyond the analyzer's defaults unless asked, no expiry.
	cfg.MaxFlowsPerInterface, cfg.MaxFlowsTotal, cfg.IdleTimeout = 0, 0, -1
	report, aerr := pcapfile.Analyze(file, pcapfile.AnalyzeOptions{Top: top, Config: cfg})
	if report != nil {
		var werr error
		if format == "json" {
			werr = report.WriteJSON(out)
		} else {
			werr = report.WriteText(out)
		}
		if werr != nil {
			fmt.Fprintf(errOut, "nta-exporter analyze: writing the report: %v\n", werr)
			return 1
		}
	}
	if aerr != nil {
		fmt.Fprintf(errOut, "nta-exporter analyze: %s: %v\n", path, aerr)
		return 1
	}
	return 0
}
