package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeTimeout bounds one GET of Fetch.
const scrapeTimeout = 20 * time.Second

// Fetch returns the body of url, which must answer 200 OK within 20 s.
func Fetch(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d err %v: %s", url, resp.StatusCode, err, b)
	}
	return string(b), nil
}

// FetchMetrics returns the parsed exposition at url (see Fetch).
func FetchMetrics(url string) (Metrics, error) {
	body, err := Fetch(url)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(body)
}

// Metrics is a parsed exposition: metric families by name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text format, accepting UTF-8 names.
func ParseMetrics(text string) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	return Metrics(fams), nil
}

// Sample is one series of a family: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// All returns the samples of family name whose labels include every pair
// of match (nil matches all). The value is a counter's or a gauge's.
func (m Metrics) All(name string, match map[string]string) []Sample {
	f := m[name]
	if f == nil {
		return nil
	}
	var out []Sample
	for _, mt := range f.GetMetric() {
		ls := map[string]string{}
		for _, lp := range mt.GetLabel() {
			ls[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range match {
			if ls[k] != v {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		v := mt.GetGauge().GetValue()
		if mt.GetCounter() != nil {
			v = mt.GetCounter().GetValue()
		}
		out = append(out, Sample{Labels: ls, Value: v})
	}
	return out
}

// One returns the single sample All finds, and fails t when there are none
// or several.
func (m Metrics) One(t testing.TB, name string, match map[string]string) Sample {
	t.Helper()
	s := m.All(name, match)
	if len(s) != 1 {
		t.Fatalf("%s%v: want exactly 1 series, got %d: %v", name, match, len(s), s)
	}
	return s[0]
}
