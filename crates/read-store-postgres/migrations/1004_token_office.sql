-- The office an officer's or auditor's token names (the history and the access record show it).
ALTER TABLE access_tokens ADD COLUMN IF NOT EXISTS office TEXT;
