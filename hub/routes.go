package hub

import "github.com/crossroads-hub/crossroads/httpapi"

// auditRoutes mounts the audit trail's publication (public, read-only),
// proofs (parties of the exchange) and record search (auditors).
func (h *Hub) auditRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "GET", Pattern: "/v1/log/", Access: httpapi.Public, Handler: h.Trail.LogHandler()},
		{Method: "GET", Pattern: "/v1/audit/proofs/{exchangeId}", Access: httpapi.Participant, Handler: h.Trail.ProofHandler()},
		{Method: "GET", Pattern: "/v1/audit/records", Access: httpapi.Auditor, Handler: h.Trail.RecordsHandler()},
	}
}
