package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// TestTopologySVG: `topology --format svg` writes a well-formed standalone
// SVG, laid out in process, with the host's interfaces drawn by id.
func TestTopologySVG(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"topology", "--format=svg", "--no-docker", "--no-libvirt", "--no-ovs"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var root struct {
		XMLName xml.Name
	}
	dec := xml.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.Strict = false // the DOCTYPE names an external DTD it does not fetch
	if err := dec.Decode(&root); err != nil || root.XMLName.Local != "svg" {
		t.Fatalf("not an SVG document (%v, root %q):\n%.300s", err, root.XMLName.Local, out.String())
	}
	if !strings.Contains(out.String(), `data-id="if:host/`) {
		t.Errorf("no host interface drawn with its id:\n%.2000s", out.String())
	}
}
