package testimage

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/tangfeixiong/nta/internal/testenv"
)

// UniqueName returns prefix followed by a random suffix, for names of
// networks and containers that must not collide with parallel tests.
func UniqueName(prefix string) string {
	return prefix + "-" + testenv.RandHex(4)
}

// CreateNetwork creates a bridge network with a unique name (from prefix)
// and a free random /24 subnet in 10.200.0.0/13, plus any extra
// `docker network create` args; t.Cleanup removes it. It returns the name
// and the subnet.
func CreateNetwork(t testing.TB, prefix string, extra ...string) (name, subnet string) {
	t.Helper()
	name = UniqueName(prefix)
	var lastErr error
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(8*256))
		subnet = fmt.Sprintf("10.%d.%d.0/24", 200+n.Int64()/256, n.Int64()%256)
		args := append([]string{"network", "create", "--driver", "bridge", "--subnet", subnet}, extra...)
		_, err := DockerErr(append(args, name)...)
		if err == nil {
			t.Cleanup(func() {
				if _, err := DockerErr("network", "rm", name); err != nil && !isNotFound(err) {
					t.Logf("cleanup: %v", err)
				}
			})
			return name, subnet
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	t.Fatalf("create test network: %v", lastErr)
	return "", ""
}

// RunContainer runs `docker run -d --name <unique name from prefix> args...`
// and registers `docker rm -f` with t.Cleanup. args are docker run options
// followed by the image and its arguments. It returns the container name.
func RunContainer(t testing.TB, prefix string, args ...string) string {
	t.Helper()
	name := UniqueName(prefix)
	t.Cleanup(func() {
		if _, err := DockerErr("rm", "-f", "-v", name); err != nil && !isNotFound(err) {
			t.Logf("cleanup: %v", err)
		}
	})
	Docker(t, append([]string{"run", "-d", "--name", name}, args...)...)
	return name
}

// isNotFound reports whether a docker CLI error says the object is gone
// (the test removed it itself).
func isNotFound(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no such") || strings.Contains(s, "not found")
}
