package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/load"
	"github.com/crossroads-hub/crossroads/pki"
)

// Separate mode (issue 13): the hub — the demo network and, for its runs,
// the bare proxy — runs as a process of its own, pinned to core 0 with
// taskset when there are two cores or more, while this process (generator
// and population register) is pinned to the others. The figures then no
// longer depend on how one Go scheduler mixes generator, provider and hub.
//
// The two processes talk over the child's stdin and stdout, one JSON
// object a line: the child says hello (its URL, the certificates the
// parent's provider and generator need, the people), the parent answers
// with commands (provider, baseline, stats), each answered by one line.
// The child's own CPU time is part of each stats answer, so the hub's CPU
// per exchange is measured, not inferred.

// childHello is the hub process's first line.
type childHello struct {
	HubURL     string        `json:"hub_url"`
	RootsPEM   string        `json:"roots_pem"`
	ClientPEM  string        `json:"client_pem"`   // ocmw-gent: certificate chain and key
	ProviderPE string        `json:"provider_pem"` // the population register's
	People     []demo.Person `json:"people"`
}

type childCommand struct {
	Op      string         `json:"op"`                 // provider, baseline, stats
	URL     string         `json:"url,omitempty"`      // provider: its base URL
	Direct  bool           `json:"direct,omitempty"`   // baseline: for the provider itself
	Window  time.Duration  `json:"window,omitempty"`   // baseline: warm-up + duration
	Request []load.Request `json:"requests,omitempty"` // baseline: the hub mix to adapt
}

type childAnswer struct {
	Error    string         `json:"error,omitempty"`
	BareURL  string         `json:"bare_url,omitempty"`
	Requests []load.Request `json:"requests,omitempty"`
	Records  int64          `json:"records,omitempty"`
	Batches  int64          `json:"batches,omitempty"`
	CPU      time.Duration  `json:"cpu,omitempty"`
	Commit   *audit.Latency `json:"commit,omitempty"`
	Seals    uint64         `json:"seals,omitempty"`
	SealSigs uint64         `json:"seal_signatures,omitempty"`
}

// ServeHub is the hub side of separate mode ('crossroads bench
// --hub-child'): it starts the demo network, says hello on out and answers
// the commands read from in until in ends.
func ServeHub(ctx context.Context, opts Options, in io.Reader, out io.Writer) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	s, err := startNetwork(ctx, opts)
	if err != nil {
		return err
	}
	defer s.stop()
	hello := childHello{HubURL: s.hubURL, RootsPEM: string(rootsPEM(s.run)), People: s.people}
	if hello.ClientPEM, err = certPEM(s.run.Certs[demo.OCMW]); err != nil {
		return err
	}
	if hello.ProviderPE, err = certPEM(s.run.Certs[demo.PopulationRegister]); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(hello); err != nil {
		return fmt.Errorf("bench: hub child: %w", err)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var cmd childCommand
		var ans childAnswer
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("bench: hub child: command: %w", err)
		}
		switch cmd.Op {
		case "provider":
			if err := s.useProvider(ctx, cmd.URL); err != nil {
				ans.Error = err.Error()
			}
			ans.BareURL = s.bareURL
		case "baseline":
			if ans.Requests, err = s.baselineMix(cmd.Request, cmd.Direct, cmd.Window); err != nil {
				ans.Error = err.Error()
			}
		case "stats":
			st := s.run.Hub.Trail.Stats()
			ans.Records, ans.Batches, ans.CPU, ans.Commit = st.Records, st.Batches, processCPU(), &st.Commit
			ans.Seals, ans.SealSigs = s.run.Hub.Sealer.Counts()
		default:
			ans.Error = "unknown command " + strconv.Quote(cmd.Op)
		}
		if err := enc.Encode(ans); err != nil {
			return fmt.Errorf("bench: hub child: %w", err)
		}
	}
	return sc.Err()
}

// hubChild is the parent's end of the hub process.
type hubChild struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *json.Decoder
	enc  *json.Encoder
	mu   sync.Mutex
	done chan error
}

func (c *hubChild) call(cmd childCommand) (childAnswer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ans childAnswer
	if err := c.enc.Encode(cmd); err != nil {
		return ans, fmt.Errorf("bench: hub process: %w", err)
	}
	if err := c.out.Decode(&ans); err != nil {
		return ans, fmt.Errorf("bench: hub process: %w", err)
	}
	if ans.Error != "" {
		return ans, fmt.Errorf("bench: hub process: %s", ans.Error)
	}
	return ans, nil
}

// Pinning says which cores the two sides were given ("" when not pinned).
type Pinning struct{ Hub, Rest string }

// pinning returns the taskset core lists: the hub on core 0, the rest on
// the others; empty without taskset or with a single core.
func pinning() Pinning {
	n := runtime.NumCPU()
	if n < 2 {
		return Pinning{}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return Pinning{}
	}
	rest := "1"
	if n > 2 {
		rest = "1-" + strconv.Itoa(n-1)
	}
	return Pinning{Hub: "0", Rest: rest}
}

// startSeparate starts the hub process and, in this process, the
// population register; it pins both sides when it can.
func startSeparate(ctx context.Context, opts Options) (_ *setup, err error) {
	argv := opts.HubCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		argv = []string{exe, "bench"}
	}
	argv = append(argv[:len(argv):len(argv)], "--hub-child", "--people", strconv.Itoa(opts.People))
	pin := pinning()
	if pin.Hub != "" {
		argv = append([]string{"taskset", "-c", pin.Hub}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: hub process: %w", err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: hub process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start hub process: %w", err)
	}
	c := &hubChild{cmd: cmd, in: in, out: json.NewDecoder(bufio.NewReaderSize(outPipe, 1<<20)), enc: json.NewEncoder(in), done: make(chan error, 1)}
	s := &setup{child: c, pinned: pin}
	s.onStop(func() {
		in.Close()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if pin.Rest != "" {
		// Every thread of this process (taskset -a), present and future.
		if out, err := exec.Command("taskset", "-a", "-p", "-c", pin.Rest, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("bench: pin the generator: %v: %s", err, out)
		}
		s.onStop(func() {
			_ = exec.Command("taskset", "-a", "-p", "-c", "0-"+strconv.Itoa(runtime.NumCPU()-1), strconv.Itoa(os.Getpid())).Run()
		})
	}
	var hello childHello
	if err := c.out.Decode(&hello); err != nil {
		return nil, fmt.Errorf("bench: hub process did not start: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(hello.RootsPEM)) {
		return nil, errors.New("bench: hub process: no CA certificate")
	}
	client, err := tls.X509KeyPair([]byte(hello.ClientPEM), []byte(hello.ClientPEM))
	if err != nil {
		return nil, fmt.Errorf("bench: hub process: client certificate: %w", err)
	}
	provCert, err := tls.X509KeyPair([]byte(hello.ProviderPE), []byte(hello.ProviderPE))
	if err != nil {
		return nil, fmt.Errorf("bench: hub process: provider certificate: %w", err)
	}
	s.hubURL, s.people = hello.HubURL, hello.People
	purl, stopProvider, err := serveProvider(newProvider(roots, s.people), roots, provCert)
	if err != nil {
		return nil, err
	}
	s.onStop(stopProvider)
	s.directURL = purl
	ans, err := c.call(childCommand{Op: "provider", URL: purl})
	if err != nil {
		return nil, err
	}
	s.bareURL = ans.BareURL
	s.clientTLS = pki.ClientTLSConfig(roots, client)
	return s, nil
}

// rootsPEM is the network CA's certificate.
func rootsPEM(r *demo.Running) []byte {
	return r.Hub.CA.CertPEM()
}

// certPEM encodes a certificate chain and its key.
func certPEM(c tls.Certificate) (string, error) {
	var b strings.Builder
	for _, der := range c.Certificate {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("bench: certificate key: %w", err)
	}
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: key})
	return b.String(), nil
}
