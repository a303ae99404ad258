// Package demo is the demo network: two authentic sources serving synthetic
// people over real HTTPS, the client institutions, an operator, the network
// file that ties them together, and a scenario that exercises every decision.
package demo

import (
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads/personid"
)

// Person is a synthetic person of the demo authentic sources.
type Person struct {
	INSZ       string
	First      string
	Last       string
	BirthDate  string
	Street     string
	PostalCode string
	City       string
	Employer   string
	EmployerID string
	JobTitle   string
	Salary     int
}

var (
	firstNames = []string{"Jan", "An", "Piet", "Marie", "Luc", "Sofie", "Mohamed", "Emma", "Lucas", "Fatima", "Noah", "Louise", "Arthur", "Olivia", "Jules", "Lina"}
	lastNames  = []string{"Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters", "De Smet", "Dubois", "Lambert", "Dupont", "Martin", "El Amrani", "Nguyen"}
	cities     = []struct{ code, name string }{{"9000", "Gent"}, {"1000", "Brussel"}, {"2000", "Antwerpen"}, {"4000", "Liège"}, {"8000", "Brugge"}, {"3000", "Leuven"}, {"5000", "Namur"}, {"6000", "Charleroi"}}
	streets    = []string{"Kerkstraat", "Stationsstraat", "Rue de la Gare", "Dorpsstraat", "Molenstraat", "Rue Haute", "Nieuwstraat", "Schoolstraat"}
	employers  = []struct{ id, name string }{{"0123456749", "Stad Gent"}, {"0203201340", "Bpost"}, {"0403170701", "Colruyt"}, {"0403448140", "Proximus"}, {"0417497106", "UZ Leuven"}}
	jobs       = []string{"nurse", "clerk", "driver", "engineer", "teacher", "cook", "cashier", "technician"}
)

// People returns n deterministic synthetic people with valid INSZ numbers
// (a mix of births before and from 2000).
func People(n int) []Person {
	out := make([]Person, n)
	for i := range out {
		born2000 := i%3 == 2
		year := 50 + i%50
		if born2000 {
			year = i % 24
		}
		month, day := 1+i%12, 1+(i/12)%28
		yymmdd := fmt.Sprintf("%02d%02d%02d", year, month, day)
		serial := 1 + (i/336)%997
		century := 1900
		if born2000 {
			century = 2000
		}
		c := cities[i%len(cities)]
		e := employers[i%len(employers)]
		out[i] = Person{
			INSZ:       personid.Make(yymmdd, serial, born2000),
			First:      firstNames[i%len(firstNames)],
			Last:       lastNames[(i/len(firstNames))%len(lastNames)],
			BirthDate:  time.Date(century+year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
			Street:     fmt.Sprintf("%s %d", streets[i%len(streets)], 1+i%120),
			PostalCode: c.code,
			City:       c.name,
			Employer:   e.name,
			EmployerID: e.id,
			JobTitle:   jobs[i%len(jobs)],
			Salary:     2000 + (i*137)%3000,
		}
	}
	return out
}
