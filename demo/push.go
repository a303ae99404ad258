package demo

import (
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Mutation push in the demo network (issue 10): the population register
// publishes address changes and deaths of persons (the mutations of its
// population-mutations service); the OCMW may receive them for social aid
// (minimised to the city), the ONEM for unemployment benefits (the whole
// address and the date of death) — each only for the persons it has a file
// on, in the capacity its authorisation names.
const (
	ServiceMutations = "population-mutations"
	OpAddressChanged = "address-changed"
	OpDied           = "died"
	// The subscriptions the scenario registers (self-service).
	SubscriptionOCMW = "ocmw-address-changes" // push, to the OCMW's https endpoint
	SubscriptionONEM = "onem-mutations"       // pull, from the feed
)

// pushNetwork adds the mutations and their authorisations to n.
func pushNetwork(n *crossroads.Network, u URLs, start, end time.Time) {
	n.Services = append(n.Services, crossroads.Service{
		ID: ServiceMutations, Provider: PopulationRegister, BaseURL: u.Population, Classification: 2,
		Description: "Changes to the population register: address changes and deaths, pushed to subscribers",
		Fields:      []string{"/insz", "/address", "/previousAddress", "/dateOfDeath"}, Subject: crossroads.SubjectPerson,
		Operations: []crossroads.Operation{
			{ID: OpAddressChanged, Kind: crossroads.OperationMutation, Fields: []string{"/insz", "/address", "/previousAddress"}},
			{ID: OpDied, Kind: crossroads.OperationMutation, Fields: []string{"/insz", "/dateOfDeath"}},
		},
	})
	n.Authorisations = append(n.Authorisations,
		crossroads.Authorisation{
			ID: "ocmw-mutations", Reference: "CSSS/26/011", Grantee: OCMW, Services: []string{ServiceMutations},
			Purposes:   []string{"social-aid"},
			Fields:     map[string][]string{ServiceMutations: {"/address/city", "/dateOfDeath"}},
			Operations: map[string][]string{ServiceMutations: {OpAddressChanged, OpDied}},
			Capacities: []crossroads.Capacity{CapSocialAid}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive,
		},
		crossroads.Authorisation{
			ID: "onem-mutations", Reference: "CSSS/26/012", Grantee: ONEM, Services: []string{ServiceMutations},
			Purposes:   []string{"unemployment-benefit"},
			Fields:     map[string][]string{ServiceMutations: {"/insz", "/address", "/dateOfDeath"}},
			Operations: map[string][]string{ServiceMutations: {OpAddressChanged, OpDied}},
			Capacities: []crossroads.Capacity{CapClaimant}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive,
		})
}
