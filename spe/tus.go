package spe

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/crossroads-hub/crossroads"
)

// Transfers in (TIR-5, EHDSR-11) use the tus protocol, served by tusd's
// handler over a data store of this package: every chunk a PATCH carries
// is sealed segment by segment as it arrives and appended to the upload's
// sealed file in the workspace, so that no plaintext ever touches the
// disk. An interrupted PATCH keeps what arrived (the client resumes from
// the offset a HEAD reports). The tus checksum extension, which tusd does
// not implement, is added here: a PATCH with Upload-Checksum (sha256 or
// sha1) is kept only if its bytes match, or refused with 460 and nothing
// kept. The content type is sniffed from the first bytes (never from the
// name) and the whole file is checked when it completes; only then, and
// once the audit trail has the record, is it a dataset of the workspace.

// uploadID is the form of the ids the store gives uploads: what a request
// names is checked against it before it reaches the file system.
var uploadID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// tusInfo is an upload's state, beside its sealed file.
type tusInfo struct {
	Info      tusd.FileInfo `json:"info"`
	SealedLen int64         `json:"sealedLen"` // bytes of the sealed file that hold Info.Offset bytes of plaintext
	Segments  uint64        `json:"segments"`
	Dataset   string        `json:"dataset"`
	Holder    string        `json:"holder"`
	Type      string        `json:"type,omitempty"` // sniffed from the first chunk
}

type checksumKey struct{}

type checksum struct {
	h    hash.Hash
	want []byte
}

// parseChecksum reads an Upload-Checksum header: "sha256 <base64>" or "sha1 <base64>".
func parseChecksum(v string) (*checksum, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return nil, errors.New("Upload-Checksum must be an algorithm and a base64 digest")
	}
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("Upload-Checksum digest is not base64")
	}
	switch alg {
	case "sha256":
		return &checksum{h: sha256.New(), want: want}, nil
	case "sha1":
		return &checksum{h: sha1.New(), want: want}, nil
	}
	return nil, fmt.Errorf("checksum algorithm %q not supported (sha256, sha1)", alg)
}

// Errors the tus handler answers with (tus has its own error bodies).
var (
	errTusHalted   = tusd.NewError("ERR_WORKSPACE_HALTED", "the workspace is halted or its permit no longer in force", http.StatusForbidden)
	errTusType     = tusd.NewError("ERR_FILE_TYPE", "the content is not of a type the permit allows", http.StatusUnsupportedMediaType)
	errTusChecksum = tusd.NewError("ERR_CHECKSUM_MISMATCH", "the chunk does not match its Upload-Checksum; nothing was kept", 460)
	errTusNotYours = tusd.NewError("ERR_NOT_YOURS", "the upload belongs to another data holder", http.StatusForbidden)
	errTusAudit    = tusd.NewError("ERR_AUDIT_UNAVAILABLE", "the upload could not be recorded; it is not part of the workspace", http.StatusServiceUnavailable)
	errTusInvalid  = tusd.NewError("ERR_INVALID_CONTENT", "the file does not parse as its type", http.StatusUnprocessableEntity)
)

// newTus builds the tus handler of one workspace: its own store, locker
// and base path, so that an upload id names a file of this workspace only.
func (s *Service) newTus(sp *space) (http.Handler, error) {
	st := &tusStore{s: s, sp: sp}
	composer := tusd.NewStoreComposer()
	composer.UseCore(st)
	composer.UseLocker(memorylocker.New())
	h, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer:           composer,
		BasePath:                "/v1/spe/permits/" + sp.permit + "/uploads/", // as the routes, so every id is of this workspace
		MaxSize:                 s.cfg.MaxUploadBytes,
		DisableDownload:         true, // EHDSR-12: raw data never leaves
		DisableTermination:      true,
		DisableConcatenation:    true,
		Logger:                  discardLogger,
		PreUploadCreateCallback: st.preCreate,
	})
	if err != nil {
		return nil, fmt.Errorf("spe: tus: %w", err)
	}
	// tusd's handlers read the upload id from the path without its base.
	base := "/v1/spe/permits/" + sp.permit + "/uploads/"
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+base+"{$}", h.PostFile)
	mux.Handle("HEAD "+base+"{id}", http.StripPrefix(base, http.HandlerFunc(h.HeadFile)))
	mux.Handle("PATCH "+base+"{id}", http.StripPrefix(base, http.HandlerFunc(h.PatchFile)))
	mux.HandleFunc("OPTIONS /v1/spe/permits/{permit}/uploads/", func(w http.ResponseWriter, r *http.Request) {})
	return checksumExtension(h.Middleware(mux)), nil
}

// checksumExtension announces the checksum extension and puts a PATCH's
// Upload-Checksum in its context.
func checksumExtension(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w = &extWriter{ResponseWriter: w}
		}
		if v := r.Header.Get("Upload-Checksum"); v != "" && r.Method == http.MethodPatch {
			c, err := parseChecksum(v)
			if err != nil {
				w.Header().Set("Tus-Resumable", "1.0.0")
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), checksumKey{}, c))
		}
		next.ServeHTTP(w, r)
	})
}

// extWriter adds the checksum extension to the headers tusd writes.
type extWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *extWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if v := w.Header().Get("Tus-Extension"); v != "" {
			w.Header().Set("Tus-Extension", v+",checksum")
			w.Header().Set("Tus-Checksum-Algorithm", "sha256,sha1")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *extWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

type tusStore struct {
	s  *Service
	sp *space
}

// preCreate checks a new upload against the permit: a dataset the permit
// names, held by the caller; a declared size within bounds.
func (st *tusStore) preCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	m, ok := memberFrom(ev.Context)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, errTusNotYours
	}
	ds, ok := m.permit.Permit.Dataset(ev.Upload.MetaData["dataset"])
	if !ok || ds.Holder != m.holder {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{},
			tusd.NewError("ERR_UNKNOWN_DATASET", "the permit names no such dataset of this data holder (metadata \"dataset\")", http.StatusBadRequest)
	}
	if ev.Upload.SizeIsDeferred {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusd.NewError("ERR_SIZE_REQUIRED", "declare Upload-Length", http.StatusBadRequest)
	}
	if max := st.s.maxUpload(m.permit); ev.Upload.Size > max {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusd.NewError("ERR_TOO_LARGE", fmt.Sprintf("the permit allows uploads of at most %d bytes", max), http.StatusRequestEntityTooLarge)
	}
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, nil
}

func (s *Service) maxUpload(a *crossroads.Authorisation) int64 {
	if f := a.Permit.Files; f != nil && f.MaxBytes > 0 && f.MaxBytes < s.cfg.MaxUploadBytes {
		return f.MaxBytes
	}
	return s.cfg.MaxUploadBytes
}

func allowedTypes(a *crossroads.Authorisation) []string {
	if f := a.Permit.Files; f != nil && len(f.Types) > 0 {
		return f.Types
	}
	return []string{TypeCSV}
}

func (st *tusStore) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	m, ok := memberFrom(ctx)
	if !ok {
		return nil, errTusNotYours
	}
	b := make([]byte, 16)
	rand.Read(b)
	info.ID = hex.EncodeToString(b)
	info.Storage = map[string]string{"Type": "crossroads-spe"}
	ti := tusInfo{Info: info, Dataset: info.MetaData["dataset"], Holder: m.holder}
	f, err := st.sp.root.OpenFile("uploads/"+info.ID+".data", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spe: new upload: %w", err)
	}
	f.Close()
	u := &tusUpload{st: st, id: info.ID, info: ti}
	if err := u.save(); err != nil {
		return nil, err
	}
	return u, nil
}

func (st *tusStore) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	if !uploadID.MatchString(id) {
		return nil, tusd.ErrNotFound
	}
	b, err := st.sp.root.ReadFile("uploads/" + id + ".info")
	if err != nil {
		// Absent, or a path the workspace's root refuses (a link out of
		// it): no such upload here.
		if !errors.Is(err, os.ErrNotExist) {
			st.s.cfg.Logger.Warn("spe: upload info unreadable", "permit", st.sp.permit, "upload", id, "err", err)
		}
		return nil, tusd.ErrNotFound
	}
	u := &tusUpload{st: st, id: id}
	if err := json.Unmarshal(b, &u.info); err != nil {
		return nil, fmt.Errorf("spe: upload %s info: %w", id, err)
	}
	return u, nil
}

type tusUpload struct {
	st   *tusStore
	id   string
	info tusInfo
}

func (u *tusUpload) save() error {
	b, err := json.Marshal(u.info)
	if err != nil {
		return err
	}
	tmp := "uploads/" + u.id + ".info.tmp"
	f, err := u.st.sp.root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = u.st.sp.root.Rename(tmp, "uploads/"+u.id+".info")
	}
	if err != nil {
		return fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	return nil
}

func (u *tusUpload) GetInfo(context.Context) (tusd.FileInfo, error) { return u.info.Info, nil }

func (u *tusUpload) GetReader(context.Context) (io.ReadCloser, error) {
	return nil, errors.New("spe: uploads are never read back over tus")
}

// WriteChunk seals src segment by segment onto the upload's file. It
// stops, keeping what it sealed, when the workspace halts or the permit
// ends (checked before every segment).
func (u *tusUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	m, ok := memberFrom(ctx)
	if !ok || m.holder != u.info.Holder {
		return 0, errTusNotYours
	}
	if offset != u.info.Info.Offset {
		return 0, tusd.ErrMismatchOffset
	}
	live := u.st.s.live(u.st.sp)
	if live() != nil {
		return 0, errTusHalted
	}
	key, err := u.st.s.contentKey(ctx, u.st.sp)
	if err != nil {
		return 0, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return 0, err
	}
	f, err := u.st.sp.root.OpenFile("uploads/"+u.id+".data", os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	defer f.Close()
	if err := f.Truncate(u.info.SealedLen); err != nil { // drop what a crash left past the last recorded segment
		return 0, fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	sum, _ := ctx.Value(checksumKey{}).(*checksum)
	var (
		written  int64
		sealed   = u.info.SealedLen
		segments = u.info.Segments
		plain    = make([]byte, SegmentSize)
		out      []byte
		stopErr  error
	)
	for {
		n, rerr := io.ReadFull(src, plain)
		if n > 0 {
			if pr := u.st.s.cfg.Progress; pr != nil {
				pr(u.st.sp.permit, "upload", offset+written)
			}
			if err := live(); err != nil {
				stopErr = errTusHalted
				break
			}
			if offset == 0 && written == 0 && u.info.Type == "" {
				typ := Sniff(plain[:n], rerr != nil && int64(n) == u.info.Info.Size)
				if typ == "" || !slices.Contains(allowedTypes(m.permit), typ) {
					u.st.s.recordOutcome(ctx, m.permit, "upload-refused", m.id, m.name, crossroads.OutcomeDenied, crossroads.ReasonFileType,
						map[string]any{"upload": u.id, "dataset": u.info.Dataset, "sniffed": typ})
					return 0, errTusType
				}
				u.info.Type = typ
			}
			if sum != nil {
				sum.h.Write(plain[:n])
			}
			out = sealSegment(out[:0], aead, u.st.sp.permit, u.id, segments, plain[:n])
			if _, err := f.WriteAt(out, sealed); err != nil {
				return 0, fmt.Errorf("spe: upload %s: %w", u.id, err)
			}
			sealed += int64(len(out))
			segments++
			written += int64(n)
		}
		if rerr != nil {
			break
		}
	}
	if sum != nil && (stopErr != nil || string(sum.h.Sum(nil)) != string(sum.want)) {
		if err := f.Truncate(u.info.SealedLen); err != nil {
			return 0, fmt.Errorf("spe: upload %s: %w", u.id, err)
		}
		if stopErr != nil {
			return 0, stopErr
		}
		return 0, errTusChecksum
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	u.info.SealedLen, u.info.Segments = sealed, segments
	u.info.Info.Offset += written
	if err := u.save(); err != nil {
		return 0, err
	}
	return written, stopErr
}

// FinishUpload checks the whole file, digests it and records it: only
// then is it a dataset of the workspace.
func (u *tusUpload) FinishUpload(ctx context.Context) error {
	m, ok := memberFrom(ctx)
	if !ok {
		return errTusNotYours
	}
	live := u.st.s.live(u.st.sp)
	key, err := u.st.s.contentKey(ctx, u.st.sp)
	if err != nil {
		return err
	}
	f, err := u.st.sp.root.Open("uploads/" + u.id + ".data")
	if err != nil {
		return fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	defer f.Close()
	o, err := newOpener(f, key, u.st.sp.permit, u.id, u.info.Info.Size, live)
	if err != nil {
		return err
	}
	h := sha256.New()
	if err := checkWhole(io.TeeReader(o, h), u.info.Type, u.info.Info.Size); err != nil {
		if errors.Is(err, ErrHalted) {
			return errTusHalted
		}
		u.st.s.recordOutcome(ctx, m.permit, "upload-refused", m.id, m.name, crossroads.OutcomeDenied, crossroads.ReasonInvalidBody,
			map[string]any{"upload": u.id, "dataset": u.info.Dataset, "type": u.info.Type})
		return errTusInvalid
	}
	io.Copy(h, o) // what checkWhole left (none for the checked types)
	digest := hex.EncodeToString(h.Sum(nil))
	if want := u.info.Info.MetaData["sha256"]; want != "" && !strings.EqualFold(want, digest) {
		u.st.s.recordOutcome(ctx, m.permit, "upload-refused", m.id, m.name, crossroads.OutcomeDenied, crossroads.ReasonChecksumMismatch,
			map[string]any{"upload": u.id, "dataset": u.info.Dataset, "sha256": digest})
		return errTusChecksum
	}
	up := Upload{Permit: u.st.sp.permit, ID: u.id, Dataset: u.info.Dataset, Holder: u.info.Holder, User: m.id,
		Filename: u.info.Info.MetaData["filename"], Type: u.info.Type, Size: u.info.Info.Size, SHA256: digest, At: u.st.s.cfg.Now().UTC()}
	if err := u.st.s.record(ctx, m.permit, "upload", m.id, m.name, map[string]any{
		"upload": up.ID, "dataset": up.Dataset, "holder": up.Holder, "type": up.Type, "size": up.Size, "sha256": up.SHA256}); err != nil {
		return errTusAudit
	}
	if err := u.st.s.cfg.Store.PutUpload(ctx, up); err != nil {
		return fmt.Errorf("spe: upload %s: %w", u.id, err)
	}
	return nil
}
