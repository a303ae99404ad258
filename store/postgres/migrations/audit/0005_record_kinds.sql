-- Record kinds (issue 8 item 7): besides exchanges the trail holds events
-- (integration changes, register applies, certificates, keys, audit
-- searches). The kind of a record and the kind of its subject are clear,
-- non-personal columns, so that auditors and the subjects' own views can
-- select by them. Existing rows are exchanges ('') about persons. Columns
-- added to the partitioned parent reach every partition, and partitions
-- created later (LIKE audit_records) have them.
ALTER TABLE audit_records ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE audit_records ADD COLUMN subject_kind text COLLATE "C" NOT NULL DEFAULT '';
UPDATE audit_records SET subject_kind = 'person' WHERE subject_index IS NOT NULL;
CREATE INDEX audit_records_kind ON audit_records(kind, seq) WHERE kind <> '';
