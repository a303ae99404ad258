-- Retention: a record's payload (ciphertext, commitment nonce, subject
-- blind index) is erased after its retention period; the row, its leaf and
-- log index stay, so the Merkle log still verifies.
ALTER TABLE audit_records ADD COLUMN erased_at INTEGER; -- Unix microseconds; NULL while the payload is kept
CREATE INDEX audit_records_retention ON audit_records(time) WHERE erased_at IS NULL;
