-- 2.0.0 no longer reads legacy_code. Dropping it would break 1.0.0, so it runs
-- only after the standby window, when nothing can roll back to 1.0.0.
ALTER TABLE orders DROP COLUMN legacy_code;
