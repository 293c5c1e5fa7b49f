-- The office an officer's or auditor's token names (the access record shows it).
ALTER TABLE access_tokens ADD COLUMN IF NOT EXISTS office TEXT;
