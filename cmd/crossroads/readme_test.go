package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/internal/syncbuf"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// readmeBlock returns the first ```sh block of the README section titled
// title: the test breaks when the README drifts from what works.
func readmeBlock(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README has no section %q", title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatalf("README section %q has no sh block", title)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("unterminated sh block")
	}
	return block
}

// TestReadmeRunningAHub runs the README's "Running a hub" block verbatim as
// a bash script, on the embedded stores and on a fresh PostgreSQL database
// (CROSSROADS_DATABASE_URL in the environment, as the block's comment
// says), with the built crossroads first on PATH and network.yaml in the
// working directory. The block's data directory, /var/lib/crossroads, is
// a tmpfs in a private mount namespace (unshare), so the machine's /var/lib
// is untouched. The last line, serve, must come up on :8443 and answer
// /readyz with a certificate for hub.example; the test then stops it with
// SIGTERM and expects a clean exit.
func TestReadmeRunningAHub(t *testing.T) {
	script := readmeBlock(t, "Running a hub")
	for _, want := range []string{"crossroads init", "crossroads apply", "crossroads serve"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the README block no longer runs %q:\n%s", want, script)
		}
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare: cannot give the block a private /var/lib/crossroads")
	}
	userns := []string{"-m"}
	if os.Geteuid() != 0 {
		userns = []string{"-r", "-m"}
	}
	if out, err := exec.Command(unshare, append(userns, "true")...).CombinedOutput(); err != nil {
		t.Skipf("unshare %v does not work here (%v: %s): cannot give the block a private /var/lib/crossroads", userns, err, out)
	}
	for _, be := range []string{"sqlite", "postgres"} {
		t.Run(be, func(t *testing.T) {
			env := cleanEnv("PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"))
			if be == "postgres" {
				env = append(env, "CROSSROADS_DATABASE_URL="+pgtest.New(t).DSN)
			}
			if c, err := net.DialTimeout("tcp", "127.0.0.1:8443", 200*time.Millisecond); err == nil {
				c.Close()
				if pgtest.Required() {
					t.Fatal("port 8443, which the README's serve line uses, is taken")
				}
				t.Skip("port 8443, which the README's serve line uses, is taken")
			}
			wd := t.TempDir()
			nw, err := os.ReadFile(networkFile(t))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(wd, "network.yaml"), nw, 0o600)
			os.WriteFile(filepath.Join(wd, "block.sh"), []byte(script), 0o600)
			// The wrapper only prepares the namespace; the block runs as written.
			wrapper := `mount -t tmpfs -o mode=0755 tmpfs /var/lib && mkdir -m 0700 /var/lib/crossroads && exec bash -euo pipefail block.sh`
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, unshare, append(userns, "bash", "-c", wrapper)...)
			cmd.Dir, cmd.Env = wd, env
			out := &syncbuf.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
			}()
			ready := false
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !ready; {
				select {
				case err := <-done:
					t.Fatalf("the README block ended before serve was up (%v):\n%s", err, out.String())
				case <-time.After(200 * time.Millisecond):
				}
				ready = readyz(filepath.Join(wd, "certs", "ca.crt"))
			}
			if !ready {
				t.Fatalf("serve did not come up:\n%s", out.String())
			}
			for _, want := range []string{"network CA: created", "operator certificate: certs/ops.crt", "applied", "ocmw-gent"} {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("the block's output lacks %q:\n%s", want, out.String())
				}
			}
			// Stop serve as systemd would; the block then ends with its status.
			serve := servePID(t, cmd.Process.Pid)
			syscall.Kill(serve, syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("serve did not stop cleanly on SIGTERM: %v\n%s", err, out.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop on SIGTERM")
			}
		})
	}
}

// readyz reports whether a hub answers /readyz on 127.0.0.1:8443 with a
// certificate for hub.example of the CA in caFile.
func readyz(caFile string) bool {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return false
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "hub.example", MinVersion: tls.VersionTLS13},
	}}
	resp, err := c.Get("https://127.0.0.1:8443/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// servePID finds the 'crossroads serve' process in the process group pgid.
func servePID(t *testing.T, pgid int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && filepath.Base(args[0]) == "crossroads" && args[1] == "serve" {
			return pid
		}
	}
	t.Fatal("no crossroads serve process found")
	return 0
}
