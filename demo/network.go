package demo

import (
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Participant ids of the demo network.
const (
	Operator           = "ops"
	Auditor            = "audit-office"        // an auditor (the DPO's office): reads the trail, keeps the GDPR records
	OCMW               = "ocmw-gent"           // public centre for social welfare: a client institution
	ONEM               = "onem"                // national employment office: a client institution
	Suspended          = "old-mutuality"       // a suspended client institution
	PopulationRegister = "population-register" // authentic source
	EmploymentRegister = "employment-register" // authentic source
	RetiredRegister    = "retired-register"    // a suspended authentic source
	EnterpriseRegister = "enterprise-register" // authentic source: the companies (CBE)
)

// Service ids of the demo network.
const (
	ServicePerson      = "person-identity"
	ServiceEmployment  = "employment-status"
	ServiceCertificate = "employment-certificate"
	ServiceRetired     = "legacy-lookup"
	ServiceEnterprise  = "enterprise-identification"
)

// Operation ids of the demo services.
const (
	OpRead           = "read"
	OpCorrectAddress = "correct-address" // PUT /persons/{subject}/address, granted explicitly
)

// DemoCompanies is how many companies beyond the employers the demo
// enterprise register holds.
const DemoCompanies = 20

// Capacities used in the demo.
var (
	CapSocialAid = crossroads.Capacity{Sector: "social-welfare", Code: "beneficiary"}
	CapApplicant = crossroads.Capacity{Sector: "social-welfare", Code: "applicant"}
	CapClaimant  = crossroads.Capacity{Sector: "unemployment", Code: "claimant"}
	// CapEmployer is held on an enterprise: the ONEM's file on an employer.
	CapEmployer = crossroads.Capacity{Sector: "unemployment", Code: "employer", Kind: crossroads.SubjectEnterprise}
)

// URLs are the base URLs of the demo authentic sources.
type URLs struct {
	Population string
	Employment string
	Retired    string
	Enterprise string // the enterprise register (EnterpriseRegister)
}

// Network returns the demo network: who participates, which services
// exist, which authorisations allow what, and who has a file on whom.
// People [0, n) have files at the OCMW as beneficiaries, every third one at
// the ONEM as claimant; person n-1 is known to the OCMW only as applicant,
// a capacity no authorisation covers. The ONEM has a file, as employer, on
// every company of the enterprise register but the last.
func Network(u URLs, people []Person, now time.Time) *crossroads.Network {
	start := time.Date(now.Year()-1, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(now.Year()+2, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := time.Date(now.Year()-1, 12, 31, 0, 0, 0, 0, time.UTC)
	n := &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: Operator, Name: "Crossroads operations", Kind: crossroads.KindOperator, Status: crossroads.StatusActive, IncidentContact: "soc@crossroads.example"},
			{ID: Auditor, Name: "Audit office (DPO)", Kind: crossroads.KindAuditor, Status: crossroads.StatusActive, IncidentContact: "dpo@crossroads.example"},
			{ID: OCMW, Name: "OCMW Gent", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive, IncidentContact: "dpo@ocmw-gent.example"},
			{ID: ONEM, Name: "Office national de l'emploi", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive, IncidentContact: "security@onem.example"},
			{ID: Suspended, Name: "Former mutuality (merged)", Kind: crossroads.KindInstitution, Status: crossroads.StatusSuspended},
			{ID: PopulationRegister, Name: "National population register", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive, IncidentContact: "cert@population.example"},
			{ID: EmploymentRegister, Name: "Employment register (DIMONA)", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive, IncidentContact: "cert@employment.example"},
			{ID: RetiredRegister, Name: "Legacy register (decommissioned)", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusSuspended},
			{ID: EnterpriseRegister, Name: "Enterprise register (CBE)", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive, IncidentContact: "cert@enterprises.example"},
		},
		Services: []crossroads.Service{
			{ID: ServicePerson, Provider: PopulationRegister, BaseURL: u.Population, Description: "Identity and main residence of a person", Classification: 2,
				Fields: []string{"/insz", "/name", "/birthDate", "/address", "/nationality", "/civilStatus"}, Subject: crossroads.SubjectPerson,
				Operations: []crossroads.Operation{
					{ID: OpRead, Method: "GET", Path: "/persons/{subject}"},
					{ID: OpCorrectAddress, Method: "PUT", Path: "/persons/{subject}/address", Body: "application/json", Fields: []string{"/insz", "/address"}},
				}},
			{ID: ServiceEmployment, Provider: EmploymentRegister, BaseURL: u.Employment, Description: "Current and past employments of a person", Classification: 3,
				Fields: []string{"/insz", "/status", "/employments"}, Subject: crossroads.SubjectPerson,
				Operations: []crossroads.Operation{{ID: OpRead, Method: "GET", Path: "/employments/{subject}"}}},
			{ID: ServiceCertificate, Provider: EmploymentRegister, BaseURL: u.Employment, Description: "Attestation of employment (plain text)", Classification: 3,
				Fields: []string{""}, Subject: crossroads.SubjectPerson,
				Operations: []crossroads.Operation{{ID: OpRead, Method: "GET", Path: "/certificates/{subject}"}}},
			{ID: ServiceRetired, Provider: RetiredRegister, BaseURL: u.Retired, Description: "Decommissioned lookup", Classification: 2,
				Fields: []string{""}, Subject: crossroads.SubjectPerson,
				Operations: []crossroads.Operation{{ID: OpRead, Method: "GET", Path: "/lookup/{subject}"}}},
			{ID: ServiceEnterprise, Provider: EnterpriseRegister, BaseURL: u.Enterprise, Description: "Basic identification data of an enterprise", Classification: 1,
				Fields:     []string{"/enterpriseNumber", "/name", "/legalForm", "/status", "/startDate", "/address", "/establishments"},
				Subject:    crossroads.SubjectEnterprise,
				Operations: []crossroads.Operation{{ID: OpRead, Method: "GET", Path: "/enterprises/{subject}"}}},
		},
		Authorisations: []crossroads.Authorisation{
			{ID: "ocmw-social-aid", Reference: "CSSS/24/101", Grantee: OCMW, Services: []string{ServicePerson, ServiceEmployment, ServiceCertificate, ServiceRetired},
				Purposes: []string{"social-aid"},
				Fields: map[string][]string{
					ServicePerson:     {"/name", "/address/city"},
					ServiceEmployment: {"/status", "/employments/employer/name", "/employments/since"},
					// The certificate is not granted whole: its plain-text body cannot be minimised, so it never passes.
					ServiceCertificate: {"/status"},
					ServiceRetired:     {""},
				},
				Capacities: []crossroads.Capacity{CapSocialAid}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive},
			{ID: "ocmw-debt-mediation", Reference: "CSSS/19/044", Grantee: OCMW, Services: []string{ServiceEmployment},
				Purposes:   []string{"debt-mediation"},
				Fields:     map[string][]string{ServiceEmployment: {"/employments"}},
				Capacities: []crossroads.Capacity{CapSocialAid, CapApplicant}, ValidFrom: start.AddDate(-5, 0, 0), ValidTo: expired, Status: crossroads.StatusActive},
			{ID: "onem-benefits", Reference: "CSSS/23/017", Grantee: ONEM, Services: []string{ServiceEmployment, ServiceCertificate},
				Purposes: []string{"unemployment-benefit"},
				Fields: map[string][]string{
					ServiceEmployment:  {"/insz", "/status", "/employments"},
					ServiceCertificate: {""},
				},
				Capacities: []crossroads.Capacity{CapClaimant}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive},
			// The only authorisation that grants a write: the address
			// correction, named explicitly (absent from Operations, a
			// service is granted its GET operations only).
			{ID: "ocmw-address-correction", Reference: "CSSS/25/233", Grantee: OCMW, Services: []string{ServicePerson},
				Purposes:   []string{"address-correction"},
				Fields:     map[string][]string{ServicePerson: {"/address"}},
				Operations: map[string][]string{ServicePerson: {OpCorrectAddress}},
				Capacities: []crossroads.Capacity{CapSocialAid}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive},
			{ID: "onem-employer-check", Reference: "CSSS/24/305", Grantee: ONEM, Services: []string{ServiceEnterprise},
				Purposes:   []string{"employer-check"},
				Fields:     map[string][]string{ServiceEnterprise: {"/enterpriseNumber", "/name", "/legalForm", "/status", "/address"}},
				Capacities: []crossroads.Capacity{CapEmployer}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive},
			{ID: "old-mutuality-identity", Reference: "CSSS/15/009", Grantee: Suspended, Services: []string{ServicePerson},
				Purposes: []string{"health-insurance"}, Fields: map[string][]string{ServicePerson: {"/name"}},
				Capacities: []crossroads.Capacity{CapSocialAid}, ValidFrom: start, ValidTo: end, Status: crossroads.StatusActive},
		},
	}
	from := start
	companies := Companies(DemoCompanies)
	for _, c := range companies[:len(companies)-1] {
		n.Integrations = append(n.Integrations, crossroads.Integration{Kind: crossroads.SubjectEnterprise, Person: c.Number, Participant: ONEM, Sector: CapEmployer.Sector, Capacity: CapEmployer.Code, From: from})
	}
	for i, p := range people {
		if i == len(people)-1 {
			n.Integrations = append(n.Integrations, crossroads.Integration{Person: p.INSZ, Participant: OCMW, Sector: CapApplicant.Sector, Capacity: CapApplicant.Code, From: from})
			continue
		}
		n.Integrations = append(n.Integrations, crossroads.Integration{Person: p.INSZ, Participant: OCMW, Sector: CapSocialAid.Sector, Capacity: CapSocialAid.Code, From: from})
		if i%3 == 0 {
			n.Integrations = append(n.Integrations, crossroads.Integration{Person: p.INSZ, Participant: ONEM, Sector: CapClaimant.Sector, Capacity: CapClaimant.Code, From: from})
		}
		if i == 1 {
			n.Integrations = append(n.Integrations, crossroads.Integration{Person: p.INSZ, Participant: Suspended, Sector: CapSocialAid.Sector, Capacity: CapSocialAid.Code, From: from})
		}
	}
	pushNetwork(n, u, start, end) // push.go
	return n
}
