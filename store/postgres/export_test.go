package postgres

// SetAfterSeq sets a hook InsertBatch calls once sequence numbers are drawn.
func SetAfterSeq(s *AuditStore, f func()) { s.afterSeq = f }
