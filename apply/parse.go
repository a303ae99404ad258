package apply

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
)

// MaxSize is the largest network file Parse reads.
const MaxSize = 8 << 20

// file mirrors crossroads.Network with strict time fields.
type file struct {
	Participants   []crossroads.Participant  `yaml:"participants"`
	Services       []crossroads.Service      `yaml:"services"`
	Authorisations []authorisation           `yaml:"authorisations"`
	Integrations   []integration             `yaml:"integrations"`
	Subscriptions  []crossroads.Subscription `yaml:"subscriptions"`
}

type authorisation struct {
	ID         string                `yaml:"id"`
	Reference  string                `yaml:"reference"`
	Grantee    string                `yaml:"grantee"`
	Services   []string              `yaml:"services"`
	Purposes   []string              `yaml:"purposes"`
	Fields     map[string][]string   `yaml:"fields"`
	Capacities []crossroads.Capacity `yaml:"capacities"`
	Operations map[string][]string   `yaml:"operations"`
	ValidFrom  stamp                 `yaml:"validFrom"`
	ValidTo    stamp                 `yaml:"validTo"`
	Status     string                `yaml:"status"`
	Limits     *crossroads.Limits    `yaml:"limits"`
	Kind       string                `yaml:"kind"`
	Permit     *crossroads.Permit    `yaml:"permit"`
}

type integration struct {
	Kind        string `yaml:"kind"`
	Person      string `yaml:"person"`
	Participant string `yaml:"participant"`
	Sector      string `yaml:"sector"`
	Capacity    string `yaml:"capacity"`
	From        stamp  `yaml:"from"`
	To          stamp  `yaml:"to"`
}

// stamp is a time written as RFC 3339 ("2025-01-01T08:00:00+01:00") or as
// a date ("2025-01-01", midnight UTC). YAML's other timestamp forms are
// refused, so a file means the same to every reader.
type stamp struct{ t time.Time }

func (s *stamp) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a time (RFC 3339 or YYYY-MM-DD)", n.Line)
	}
	if n.Tag == "!!null" {
		s.t = time.Time{}
		return nil
	}
	if t, err := time.Parse(time.RFC3339Nano, n.Value); err == nil {
		s.t = t.UTC()
		return nil
	}
	if t, err := time.Parse(time.DateOnly, n.Value); err == nil {
		s.t = t
		return nil
	}
	return fmt.Errorf("line %d: %q is not a time (RFC 3339, e.g. 2025-01-01T08:00:00Z, or YYYY-MM-DD)", n.Line, n.Value)
}

// Parse reads a network file: YAML with the fields of crossroads.Network,
// at most MaxSize bytes, one document. Unknown fields are errors. Times are
// RFC 3339 or YYYY-MM-DD (midnight UTC) and come back in UTC. Parse checks
// syntax only; see Validate.
func Parse(r io.Reader) (n *crossroads.Network, err error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read network file: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("network file larger than %d MiB", MaxSize>>20)
	}
	// yaml.v3 has panicked on hostile input before; a file is untrusted.
	defer func() {
		if p := recover(); p != nil {
			n, err = nil, fmt.Errorf("parse network file: malformed YAML (%v)", p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parse network file: empty")
		}
		return nil, fmt.Errorf("parse network file: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse network file: more than one YAML document")
	}
	n = &crossroads.Network{Participants: f.Participants, Services: f.Services, Subscriptions: f.Subscriptions}
	for _, a := range f.Authorisations {
		n.Authorisations = append(n.Authorisations, crossroads.Authorisation{
			ID: a.ID, Reference: a.Reference, Grantee: a.Grantee, Services: a.Services, Purposes: a.Purposes,
			Fields: a.Fields, Capacities: a.Capacities, Operations: a.Operations, ValidFrom: a.ValidFrom.t, ValidTo: a.ValidTo.t,
			Status: a.Status, Limits: a.Limits, Kind: a.Kind, Permit: a.Permit,
		})
	}
	for _, in := range f.Integrations {
		n.Integrations = append(n.Integrations, crossroads.Integration{
			Kind: in.Kind, Person: in.Person, Participant: in.Participant, Sector: in.Sector, Capacity: in.Capacity,
			From: in.From.t, To: in.To.t,
		})
	}
	return n, nil
}
