-- A participant of kind enterprise-representative names the enterprise
-- (canonical CBE number) it represents (issue 15 item 3).
ALTER TABLE participants ADD COLUMN enterprise text NOT NULL DEFAULT '';
