package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tangfeixiong/nta/flowagg/pcapfile"
)

// runAnalyze reads a pcap/pcapng file through the live decoder and flow
// table and prints totals and top flows. A damaged file prints the totals
// up to the damage, then the error, and exits 1.
func runAnalyze(path, format string, top int, f *flowFlags, out, errOut io.Writer, logger *slog.Logger) int {
	file, err := os.Open(path)
	if err != nil {
		logger.Error("cannot open capture file", "err", err)
		return 1
	}
	defer file.Close()
	cfg, err := f.aggregatorConfig()
	if err != nil {
		logger.Error("bad flow flags", "err", err)
		return exitUsage
	}
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
			logger.Error("write report", "err", werr)
			return 1
		}
	}
	if aerr != nil {
		fmt.Fprintf(errOut, "nta-exporter analyze: %s: %v\n", path, aerr)
		return 1
	}
	return 0
}
