package hostile

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/pki"
)

// seals attacks the seals of group commits (seal v2: the seals of one
// commit share one signature, each carries its claims and inclusion
// proof): concurrent exchanges must each get a seal that verifies with the
// network CA alone, and no part of one seal may be passed off with
// another's: claims swapped between two seals of one group, a proof moved
// to another index.
func (r *runner) seals(ctx context.Context) {
	const n = 32
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = r.exchange(ctx, nil, nil) })
	}
	wg.Wait()
	type sealed struct {
		token string
		body  []byte
		parts []string
	}
	var got []sealed
	bad := 0
	for _, a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			continue
		}
		tok := a.header.Get(pki.HeaderSeal)
		if _, err := pki.VerifySeal(tok, a.body, r.t.Roots, time.Now()); err != nil {
			bad++
			continue
		}
		got = append(got, sealed{tok, a.body, strings.Split(tok, pki.SealSeparator)})
	}
	r.rep.Results = append(r.rep.Results, Result{
		Name: "concurrent exchanges: every seal verifies with the network CA alone", Want: fmt.Sprintf("%d of %d", n, n),
		Got: fmt.Sprintf("%d verify, %d do not", len(got), bad), OK: len(got) == n && bad == 0, Exchange: true, Audited: true,
	})
	// Two seals of one group: the same JWS.
	var a, b *sealed
	groups := map[string]int{}
	for i := range got {
		if len(got[i].parts) != 3 {
			continue
		}
		if j, ok := groups[got[i].parts[0]]; ok && a == nil {
			a, b = &got[j], &got[i]
		}
		groups[got[i].parts[0]] = i
	}
	if a == nil {
		r.rep.Results = append(r.rep.Results, Result{
			Name: "seals of one group commit", Want: "two seals sharing a signature among 32 concurrent exchanges",
			Got: fmt.Sprintf("%d signatures for %d seals", len(groups), len(got)), OK: false,
		})
		return
	}
	swapped := a.parts[0] + pki.SealSeparator + b.parts[1] + pki.SealSeparator + a.parts[2]
	_, err := pki.VerifySeal(swapped, b.body, r.t.Roots, time.Now())
	r.rep.Results = append(r.rep.Results, Result{
		Name: "seal: another seal's claims with this seal's proof", Want: "refused",
		Got: verdict(err), OK: err != nil,
	})
	moved, err := moveProof(a.parts[2])
	if err == nil {
		_, err = pki.VerifySeal(a.parts[0]+pki.SealSeparator+a.parts[1]+pki.SealSeparator+moved, a.body, r.t.Roots, time.Now())
	}
	r.rep.Results = append(r.rep.Results, Result{
		Name: "seal: its proof moved to another index of the group", Want: "refused",
		Got: verdict(err), OK: err != nil,
	})
}

func verdict(err error) string {
	if err != nil {
		return "refused"
	}
	return "verified"
}

// moveProof returns the proof with its index changed (to the next one,
// modulo the group's size).
func moveProof(p64 string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return "", err
	}
	var p struct {
		Index int      `json:"index"`
		Size  int      `json:"size"`
		Path  []string `json:"path"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", err
	}
	p.Index = (p.Index + 1) % max(p.Size, 2)
	out, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(out), nil
}
