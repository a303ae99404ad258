// Package spedemo is the secure-processing demo (crossroads demo
// --profile spe) and the scaffolding its tests share: a data permit on a
// running demo hub, its members as participants with their own
// certificates, synthetic admissions datasets, a small tus client, and
// calls of the /v1/spe API.
package spedemo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/spe"
)

// Participants of the demo permit.
const (
	AccessBody = "hdab"       // the health data access body
	HolderA    = "hospital-a" // data holder of admissions-a
	HolderB    = "hospital-b" // data holder of admissions-b
	Researcher = "researcher" // Dr Alice Peeters
	Reviewer1  = "reviewer-1" // output checkers of the access body
	Reviewer2  = "reviewer-2" //
	Outsider   = "outsider"   // a participant the permit does not name
	Permit     = "permit-cardio"
	DatasetA   = "admissions-a"
	DatasetB   = "admissions-b"
)

// World is a permit on a running hub and its members' clients.
type World struct {
	Run     *demo.Running
	Permit  crossroads.Authorisation
	Clients map[string]*http.Client
	Certs   map[string]tls.Certificate
	// Dir holds each member's certificate and key (id.crt, id.key) and
	// the CA (ca.crt), for clients outside Go.
	Dir string
}

// Options adjust the permit.
type Options struct {
	PermitID string        // default Permit
	ValidFor time.Duration // default 30 days
	Peers    []crossroads.PermitPeer
	// Extra participants to register (a peer hub's participant).
	Extra []crossroads.Participant
	// Datasets names the datasets (default both).
	Datasets []crossroads.PermitDataset
}

// NewPermit is the demo permit.
func NewPermit(o Options) crossroads.Authorisation {
	if o.PermitID == "" {
		o.PermitID = Permit
	}
	if o.ValidFor == 0 {
		o.ValidFor = 30 * 24 * time.Hour
	}
	if o.Datasets == nil {
		o.Datasets = []crossroads.PermitDataset{
			{ID: DatasetA, Holder: HolderA, Description: "Cardiac admissions 2025, hospital A"},
			{ID: DatasetB, Holder: HolderB, Description: "Cardiac admissions 2025, hospital B"},
		}
	}
	now := time.Now().UTC()
	return crossroads.Authorisation{
		ID: o.PermitID, Reference: "HDAB/2026/0042", Grantee: Researcher, Purposes: []string{"scientific-research"},
		ValidFrom: now.Add(-time.Hour), ValidTo: now.Add(o.ValidFor), Status: crossroads.StatusActive, Kind: crossroads.KindDataPermit,
		Permit: &crossroads.Permit{
			AccessBody: AccessBody, Purpose: "Length of stay after cardiac admissions, by region",
			Datasets: o.Datasets,
			Members: []crossroads.PermitMember{
				{Participant: Researcher, Role: crossroads.RoleResearcher, Name: "Dr Alice Peeters"},
				{Participant: HolderA, Role: crossroads.RoleDataHolder, Name: "Data manager, hospital A"},
				{Participant: HolderB, Role: crossroads.RoleDataHolder, Name: "Data manager, hospital B"},
				{Participant: Reviewer1, Role: crossroads.RoleReviewer, Name: "Output checker 1"},
				{Participant: Reviewer2, Role: crossroads.RoleReviewer, Name: "Output checker 2"},
				{Participant: AccessBody, Role: crossroads.RoleAccessBody, Name: "Permit officer"},
			},
			Statistics: []string{crossroads.StatCount, crossroads.StatSum, crossroads.StatMean, crossroads.StatMedian},
			Software:   []string{spe.Software},
			Rules:      map[string]any{"threshold": 10, "dominance_n": 2, "dominance_k": 0.9, "p_ratio": 0.1},
			Budget:     &crossroads.PrivacyBudget{Epsilon: 1, Delta: 1e-6},
			Files:      &crossroads.PermitFiles{Types: []string{"csv"}, MaxBytes: 256 << 20},
			Peers:      o.Peers,
		},
	}
}

var members = []string{AccessBody, HolderA, HolderB, Researcher, Reviewer1, Reviewer2, Outsider}

// Setup registers the permit's participants and the permit on r's hub
// (validated as apply validates a network file) and issues each member a
// client certificate of the hub's CA.
func Setup(ctx context.Context, r *demo.Running, o Options) (*World, error) {
	w := &World{Run: r, Permit: NewPermit(o), Clients: map[string]*http.Client{}, Certs: map[string]tls.Certificate{},
		Dir: filepath.Join(r.Dir, "spe-members")}
	n := &crossroads.Network{Authorisations: []crossroads.Authorisation{w.Permit}}
	for _, id := range members {
		n.Participants = append(n.Participants, crossroads.Participant{ID: id, Name: id, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
	}
	n.Participants = append(n.Participants, o.Extra...)
	if err := apply.Validate(n, r.Hub.Directory.Snapshot(), nil); err != nil {
		return nil, fmt.Errorf("spe demo: permit: %w", err)
	}
	if err := r.Hub.Directory.Store().Apply(ctx, n); err != nil {
		return nil, fmt.Errorf("spe demo: apply: %w", err)
	}
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(w.Dir, "ca.crt"), r.Hub.CA.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	for _, id := range append(members, demo.Operator) {
		cert, err := w.Issue(ctx, id)
		if err != nil {
			return nil, err
		}
		w.Certs[id] = cert
		w.Clients[id] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig(r.Hub.CA.Pool(), cert)}}
	}
	return w, nil
}

// Issue issues participant id a client certificate of the hub's CA,
// records it and writes it to Dir.
func (w *World) Issue(ctx context.Context, id string) (tls.Certificate, error) {
	certPEM, keyPEM, rec, err := w.Run.Hub.CA.Issue(pki.IssueRequest{Participant: id})
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := w.Run.Hub.Registers.RecordCertificate(ctx, rec); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(filepath.Join(w.Dir, id+".crt"), certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(filepath.Join(w.Dir, id+".key"), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return pki.LoadKeyPair(certPEM, keyPEM)
}

// SetPermit applies a changed permit (expiry, revocation) through the registers.
func (w *World) SetPermit(ctx context.Context, a crossroads.Authorisation) error {
	w.Permit = a
	return w.Run.Hub.Directory.Store().Apply(ctx, &crossroads.Network{Authorisations: []crossroads.Authorisation{a}})
}

// Base is the URL of the permit's workspace.
func (w *World) Base() string { return w.Run.Base + "/v1/spe/permits/" + w.Permit.ID }

// Admissions makes a synthetic admissions dataset (CSV): region, sex,
// age, length of stay in days and cost in euro. rows rows spread over the
// regions East, West and North; with islands, 3 rows in the region Island
// (a cell below any threshold); with dominant, one stay in the West costs
// far more than all others together (a dominated cell).
func Admissions(seed uint64, rows int, islands, dominant bool) []byte {
	rng := rand.New(rand.NewPCG(seed, 42))
	var b bytes.Buffer
	b.WriteString("region,sex,age,los,cost\n")
	regions := []string{"East", "West", "North"}
	row := func(region string, cost float64) {
		sex := "F"
		if rng.IntN(2) == 0 {
			sex = "M"
		}
		fmt.Fprintf(&b, "%s,%s,%d,%d,%.2f\n", region, sex, 40+rng.IntN(50), 1+rng.IntN(20), cost)
	}
	for i := 0; i < rows; i++ {
		row(regions[i%3], 2000+rng.Float64()*8000)
	}
	if islands {
		for i := 0; i < 3; i++ {
			row("Island", 3000+rng.Float64()*1000)
		}
	}
	if dominant {
		row("West", 50_000_000)
	}
	return b.Bytes()
}

// Upload sends data as dataset into the workspace with tus (creation,
// then one PATCH with Upload-Checksum) as participant as; it returns the
// upload URL and the final status.
func (w *World) Upload(ctx context.Context, as, dataset string, data []byte) (string, int, error) {
	c := w.Clients[as]
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.Base()+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Upload-Metadata", "dataset "+base64.StdEncoding.EncodeToString([]byte(dataset))+",filename "+base64.StdEncoding.EncodeToString([]byte(dataset+".csv")))
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", resp.StatusCode, nil
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = w.Run.Base + loc
	}
	status, err := w.Patch(ctx, as, loc, 0, data, true)
	return loc, status, err
}

// Patch sends one tus PATCH of data at offset, with Upload-Checksum when sum.
func (w *World) Patch(ctx context.Context, as, loc string, offset int64, data []byte, sum bool) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, loc, bytes.NewReader(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	if sum {
		h := sha256.Sum256(data)
		req.Header.Set("Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(h[:]))
	}
	resp, err := w.Clients[as].Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Call sends a JSON request to the workspace API and decodes the answer
// into out (when non-nil and the status is 2xx); it returns the status
// and, for a problem, its reason.
func (w *World) Call(ctx context.Context, as, method, path string, body, out any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, w.Base()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.Clients[as].Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var p struct{ Reason string }
		json.Unmarshal(b, &p)
		return resp.StatusCode, p.Reason, nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, "", fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, "", nil
}

// Query posts a query as the researcher.
func (w *World) Query(ctx context.Context, req spe.QueryRequest) (int, string, *spe.ReleaseView, error) {
	var v spe.ReleaseView
	status, reason, err := w.Call(ctx, Researcher, http.MethodPost, "/queries", req, &v)
	return status, reason, &v, err
}

// Q builds a query's JSON.
func Q(dataset string, index []string, stat, value string, filters ...map[string]any) json.RawMessage {
	q := map[string]any{"dataset": dataset, "index": index, "statistic": stat}
	if value != "" {
		q["value"] = value
	}
	if len(filters) > 0 {
		q["filters"] = filters
	}
	b, _ := json.Marshal(q)
	return b
}
