package hub

// CloseAuditStoreForTest makes the audit store fail, as a broken disk would.
func (h *Hub) CloseAuditStoreForTest() { h.audits.Close() }
