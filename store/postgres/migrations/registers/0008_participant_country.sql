-- A participant of kind national-backend names its country (ISO 3166-1
-- alpha-2), the origin of the keys it uploads to the federation gateway
-- (issue 11 item 3, seed 004).
ALTER TABLE participants ADD COLUMN country text NOT NULL DEFAULT '';
