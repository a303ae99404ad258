package efgs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/efgs"
)

// LoadOptions shape the load test (seed 004 §3.2: many back-ends, large
// quantities of data).
type LoadOptions struct {
	BatchesPerMember int // default 2
	KeysPerBatch     int // default 5,000 (the batch limit)
	Concurrency      int // requests in flight (default 8)
}

// LoadReport is what the load test measured.
type LoadReport struct {
	Members, Batches, Keys          int
	UploadWall, DownloadWall        time.Duration
	KeysPerSecondIn                 float64
	BatchesDownloaded, KeysOut      int
	BatchesPerSecondOut             float64
	UploadP50, UploadP99, UploadMax time.Duration
	DownloadP50, DownloadP99, DlMax time.Duration
	BodyBytesPerBatch               int
}

func (r *LoadReport) String() string {
	return fmt.Sprintf(`members %d, batches %d of %d keys (%d keys, %d KiB per protobuf batch)
upload:   %v wall, %.0f keys/s in, latency p50 %v p99 %v max %v
download: %d batches (%d keys) in %v, %.1f batches/s out, latency p50 %v p99 %v max %v
`, r.Members, r.Batches, r.Keys/max(r.Batches, 1), r.Keys, r.BodyBytesPerBatch>>10,
		r.UploadWall.Round(time.Millisecond), r.KeysPerSecondIn, r.UploadP50.Round(time.Millisecond), r.UploadP99.Round(time.Millisecond), r.UploadMax.Round(time.Millisecond),
		r.BatchesDownloaded, r.KeysOut, r.DownloadWall.Round(time.Millisecond), r.BatchesPerSecondOut, r.DownloadP50.Round(time.Millisecond), r.DownloadP99.Round(time.Millisecond), r.DlMax.Round(time.Millisecond))
}

// Load uploads BatchesPerMember signed batches of KeysPerBatch keys from
// every member, then has every member download the day's batches by
// nextBatchTag, over the hub's mTLS listener, and reports throughput and
// latency. Batches are encoded and signed before the clock starts.
func (g *Gateway) Load(ctx context.Context, o LoadOptions) (*LoadReport, error) {
	if o.BatchesPerMember <= 0 {
		o.BatchesPerMember = 2
	}
	if o.KeysPerBatch <= 0 {
		o.KeysPerBatch = efgs.DefaultMaxBatchKeys
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	type job struct {
		m    *Member
		tag  string
		body []byte
		sig  string
	}
	now := time.Now().UTC()
	var jobs []job
	members := make([]*Member, 0, len(g.Members))
	for _, m := range g.Members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b *Member) int { return compare(a.Country, b.Country) })
	rep := &LoadReport{Members: len(members)}
	for b := 0; b < o.BatchesPerMember; b++ {
		for _, m := range members {
			keys := Keys(m.Country, o.KeysPerBatch, now)
			sig, err := m.Sign(keys)
			if err != nil {
				return nil, err
			}
			body := (&efgs.DiagnosisKeyBatch{Keys: keys}).MarshalProto()
			rep.BodyBytesPerBatch = len(body)
			jobs = append(jobs, job{m, fmt.Sprintf("load-%s-%d-%d", m.Country, now.UnixNano(), b), body, sig})
		}
	}
	rep.Batches, rep.Keys = len(jobs), len(jobs)*o.KeysPerBatch

	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
	)
	runAll := func(n int, do func(i int) (time.Duration, error)) time.Duration {
		start := time.Now()
		next := make(chan int)
		var wg sync.WaitGroup
		for range o.Concurrency {
			wg.Go(func() {
				for i := range next {
					d, err := do(i)
					mu.Lock()
					lat = append(lat, d)
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			})
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return time.Since(start)
	}
	rep.UploadWall = runAll(len(jobs), func(i int) (time.Duration, error) {
		j := jobs[i]
		t := time.Now()
		st, b, err := g.call(ctx, j.m.Client, http.MethodPost, g.Base+"/diagnosiskeys/upload", map[string]string{"batchTag": j.tag,
			"batchSignature": j.sig, "Content-Type": efgs.MediaProtobuf}, j.body)
		d := time.Since(t)
		if err == nil && st != http.StatusCreated {
			err = fmt.Errorf("upload %s: %d %s", j.tag, st, b)
		}
		return d, err
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	rep.KeysPerSecondIn = float64(rep.Keys) / rep.UploadWall.Seconds()
	rep.UploadP50, rep.UploadP99, rep.UploadMax = quantiles(lat)

	// Downloads: every member walks the day's chain; the tags are known
	// after the first walk, so the others fetch them concurrently by tag.
	day := now.Format(time.DateOnly)
	_, tags, _, st, err := g.downloadDay(ctx, members[0], day)
	if err != nil || st != http.StatusOK {
		return nil, fmt.Errorf("walk the day's batches: %d %v", st, err)
	}
	type dl struct {
		m   *Member
		tag string
	}
	var dls []dl
	for _, m := range members {
		for _, t := range tags {
			dls = append(dls, dl{m, t})
		}
	}
	lat = nil
	var keysOut int
	rep.DownloadWall = runAll(len(dls), func(i int) (time.Duration, error) {
		d := dls[i]
		t := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.Base+"/diagnosiskeys/download/"+day, nil)
		req.Header.Set("Accept", efgs.MediaProtobuf)
		req.Header.Set("batchTag", d.tag)
		resp, err := d.m.Client.Do(req)
		if err != nil {
			return time.Since(t), err
		}
		var buf []byte
		buf, err = readAll(resp)
		took := time.Since(t)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("download %s: %d", d.tag, resp.StatusCode)
		}
		if err == nil {
			bt, derr := efgs.UnmarshalBatch(buf, 0)
			if derr != nil {
				err = derr
			} else {
				mu.Lock()
				keysOut += len(bt.Keys)
				mu.Unlock()
			}
		}
		return took, err
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	rep.BatchesDownloaded, rep.KeysOut = len(dls), keysOut
	rep.BatchesPerSecondOut = float64(len(dls)) / rep.DownloadWall.Seconds()
	rep.DownloadP50, rep.DownloadP99, rep.DlMax = quantiles(lat)
	return rep, nil
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
}

func quantiles(d []time.Duration) (p50, p99, maxD time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99), s[len(s)-1]
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
