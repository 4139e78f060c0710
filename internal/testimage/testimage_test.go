package testimage

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEnsureIdempotent(t *testing.T) {
	ref := Ensure(t)
	if ref != Ref {
		t.Fatalf("Ensure = %q, want %q", ref, Ref)
	}
	id1 := Docker(t, "image", "inspect", "--format", "{{.Id}}", ref)
	if got := Docker(t, "image", "inspect", "--format", `{{index .Config.Labels "`+LabelSourceHash+`"}}`, ref); got != SourceHash() {
		t.Errorf("label %s = %q, want %q", LabelSourceHash, got, SourceHash())
	}
	if got := Docker(t, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", ref); got != `["/app"]` {
		t.Errorf("entrypoint = %s", got)
	}
	start := time.Now()
	Ensure(t)
	if id2 := Docker(t, "image", "inspect", "--format", "{{.Id}}", ref); id2 != id1 {
		t.Errorf("second Ensure rebuilt the image: %s -> %s", id1, id2)
	}
	t.Logf("second Ensure took %v", time.Since(start))
}

// TestAppSendsExactBytes runs a server and sends exact TCP and UDP amounts
// to it from a second container over a user network.
func TestAppSendsExactBytes(t *testing.T) {
	ref := Ensure(t)
	net, _ := CreateNetwork(t, "nta-ti")
	srv := RunContainer(t, "nta-ti-srv", "--network", net, ref, "-listen", ":8080")
	cli := RunContainer(t, "nta-ti-cli", "--network", net, ref, "-sleep")

	out := Docker(t, "exec", cli, "/app", "-send", srv+":8080", "-bytes", "123457", "-chunk", "1400")
	if want := fmt.Sprintf("sent 123457 bytes to %s:8080 (tcp)", srv); out != want {
		t.Errorf("send output %q, want %q", out, want)
	}
	Docker(t, "exec", cli, "/app", "-send", srv+":8080", "-proto", "udp", "-bytes", "2500", "-chunk", "1000")

	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := Docker(t, "logs", srv)
		tcpOK := strings.Contains(logs, "received 123457 bytes")
		udp := strings.Count(logs, "received 1000 bytes") == 2 && strings.Count(logs, "received 500 bytes") == 1
		if tcpOK && udp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server log does not show the transfers:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestImportBinary puts the test program at a nested path of an otherwise
// empty image and runs it through the entrypoint.
func TestImportBinary(t *testing.T) {
	RequireDocker(t)
	image := "nta-test/import:" + UniqueName("t")
	ImportBinary(t, image, build(t, t.TempDir()), "/usr/local/bin/app")
	if got := Docker(t, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image); got != `["/usr/local/bin/app"]` {
		t.Errorf("entrypoint = %s", got)
	}
	Docker(t, "run", "--rm", "--network", "none", image, "-h") // flag usage, exit 0
}
