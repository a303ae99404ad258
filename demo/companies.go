package demo

import "github.com/crossroads-hub/crossroads/personid"

// Company is a synthetic enterprise of the demo enterprise register (an
// authentic source of the Crossroads Bank for Enterprises kind).
type Company struct {
	Number     string // canonical CBE enterprise number (10 digits)
	Name       string
	LegalForm  string
	Street     string
	PostalCode string
	City       string
	StartDate  string // YYYY-MM-DD
	Status     string // active or stopped
	// Establishments are the company's establishment units (CBE numbers
	// starting 2–8).
	Establishments []string
}

var legalForms = []string{"NV/SA", "BV/SRL", "CV/SC", "VZW/ASBL", "Public body"}

// Companies returns the demo's synthetic companies: the employers of the
// demo people first (so an employer read through the hub is one a person
// works for), then n more, every one with a valid enterprise number.
func Companies(n int) []Company {
	out := make([]Company, 0, len(employers)+n)
	for i, e := range employers {
		out = append(out, company(i, e.id, e.name))
	}
	for i := 0; i < n; i++ {
		k := len(employers) + i
		num := personid.MakeEnterprise(4_100_000 + k*7919)
		out = append(out, company(k, num, lastNames[k%len(lastNames)]+" & "+lastNames[(k*5+1)%len(lastNames)]))
	}
	return out
}

func company(i int, number, name string) Company {
	c := cities[i%len(cities)]
	status := "active"
	if i%7 == 6 {
		status = "stopped"
	}
	return Company{
		Number: number, Name: name, LegalForm: legalForms[i%len(legalForms)],
		Street: streets[i%len(streets)], PostalCode: c.code, City: c.name,
		StartDate: "19" + string(rune('5'+i%5)) + "0-01-01", Status: status,
		Establishments: []string{personid.MakeEnterprise(21_000_000 + i*104_729)},
	}
}
