// Package deploy holds the packaging: the Dockerfile, the systemd unit and
// an example production config. Its tests check them.
package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	static     sync.Once
	staticBin  string
	staticErr  error
	staticTemp string
)

// buildStatic builds the binary as the image gets it (CGO_ENABLED=0), once
// per test run. (The first pure-Go build on a cold cache rebuilds every
// dependency: minutes on a busy two-core machine; then it is cached.)
func buildStatic(t *testing.T) string {
	t.Helper()
	static.Do(func() {
		if staticTemp, staticErr = os.MkdirTemp("", "crossroads-static-"); staticErr != nil {
			return
		}
		staticBin = filepath.Join(staticTemp, "crossroads")
		cmd := exec.Command("go", "build", "-trimpath", "-o", staticBin, "../cmd/crossroads")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = fmt.Errorf("CGO_ENABLED=0 go build: %v\n%s", err, out)
		}
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if staticTemp != "" {
		os.RemoveAll(staticTemp)
	}
	os.Exit(code)
}

// TestStaticBinary: the pure-Go build needs no loader and no shared
// library, so it runs FROM scratch.
func TestStaticBinary(t *testing.T) {
	bin := buildStatic(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary names a program interpreter: it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs %v", libs)
	}
}

// TestExampleConfig: every setting of crossroads.yaml is a flag of serve
// (serve reads the file, then stops at the missing CA), and lists are
// lists.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("crossroads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg["hostname"].([]any); !ok || cfg["database-url"] == nil {
		t.Fatalf("the example has no hostname list or database-url: %v", cfg)
	}
	bin := buildStatic(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--config", "crossroads.yaml", "--dir", dir)
	cmd.Env = append(os.Environ(), "CROSSROADS_CA_PASSPHRASE=a long test passphrase")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no network CA") {
		t.Fatalf("serve --config crossroads.yaml: %v\n%s", err, out)
	}
}

// TestSystemdUnit: the unit runs serve unprivileged with the hardening an
// operator expects; systemd-analyze verifies it where installed.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("crossroads.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			set[k] = v
		}
	}
	for k, want := range map[string]string{
		"User": "crossroads", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "ReadWritePaths": "/var/lib/crossroads",
		"ProtectKernelTunables": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
	} {
		if got, ok := set[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !strings.Contains(set["ExecStart"], "crossroads serve --config") {
		t.Errorf("ExecStart=%s", set["ExecStart"])
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command(sa, "verify", "crossroads.service").CombinedOutput()
		// verify complains about the binary missing on a build machine; anything else is a unit error.
		if err != nil && !strings.Contains(string(out), "/usr/local/bin/crossroads") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// TestDockerImage builds the image offline and runs 'crossroads version'
// in it, when a Docker daemon answers.
func TestDockerImage(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command: image not built")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon answers (docker info: %v): image not built\n%s", err, lastLine(out))
	}
	tag := "crossroads:test-" + time.Now().Format("20060102150405")
	if out, err := exec.Command("./build-image.sh", tag).CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	out, err := exec.Command("docker", "run", "--rm", tag, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "crossroads ") {
		t.Fatalf("docker run %s version: %v\n%s", tag, err, out)
	}
	out, err = exec.Command("docker", "image", "inspect", "--format", "{{.Config.User}}", tag).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "65532:65532" {
		t.Fatalf("image user %q, %v", out, err)
	}
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	return s[strings.LastIndex(s, "\n")+1:]
}
