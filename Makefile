# nta — build, run and test. Everything runs as root on Debian 12.
GO        ?= go
BIN       := bin/nta-exporter
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w \
  -X github.com/prometheus/common/version.Version=$(VERSION) \
  -X github.com/prometheus/common/version.Revision=$(shell git rev-parse HEAD 2>/dev/null) \
  -X github.com/prometheus/common/version.Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
export CGO_ENABLED := 0

.PHONY: build run test test-unit lint lab-up fuzz bench

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nta-exporter

## run: build and run the exporter on this host with defaults (:9819/metrics).
run: build
	./$(BIN)

lab-up:
	bash scripts/lab-up.sh

## lint: gofmt, go vet, and a tidy module (go mod tidy -diff prints the fix and fails).
lint:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run 'go mod tidy'"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

test-unit:
	$(GO) test -count=1 ./...

## fuzz: each fuzz target briefly (FUZZTIME each, default 10s).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./flowagg/decoder/
	$(GO) test -run='^$$' -fuzz=FuzzParseBPF -fuzztime=$(FUZZTIME) ./flowagg/afpacket/
	$(GO) test -run='^$$' -fuzz=FuzzAnalyze -fuzztime=$(FUZZTIME) ./flowagg/pcapfile/
	$(GO) test -run='^$$' -fuzz=FuzzParseBridgePorts -fuzztime=$(FUZZTIME) ./hostnet/

## test: install + start the lab's daemons, then run every test (unit, e2e, fuzz).
test: lab-up lint build
	$(GO) test -count=1 -timeout 40m -p 1 ./...
	$(MAKE) fuzz

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
