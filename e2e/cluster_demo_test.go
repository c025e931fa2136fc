package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `make cluster-demo` works: three NATS servers and three daemons from
// the script, a room line and a private message across nodes, and a
// stored message delivered on a third (the script's check mode).
func TestClusterDemo(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("!!! SKIPPED: no bash to run scripts/cluster-demo.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../scripts/cluster-demo.sh")
	cmd.Env = append(os.Environ(), "CLUSTER_DEMO_CHECK=1", "CLUSTER_DEMO_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cluster demo: ok") {
		t.Fatalf("cluster demo: %v\n%s", err, out)
	}
}
