---- tern: disable-tx ----
-- CONCURRENTLY builds the index without locking out blue's writes; it cannot
-- run inside a transaction, hence the line above.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_by_item ON orders (item);
