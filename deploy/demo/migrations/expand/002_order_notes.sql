-- 2.0.0 writes a note with each order. A nullable column with no default is
-- backward compatible: blue's INSERTs, which do not name it, keep working.
ALTER TABLE orders ADD COLUMN note text;
