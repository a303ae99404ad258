package hub

import "github.com/crossroads-hub/crossroads/httpapi"

// auditRoutes mounts the audit trail's publication, proofs and queries.
func (h *Hub) auditRoutes() []httpapi.Route {
	return nil
}
