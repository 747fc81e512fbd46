-- The schema 1.0.0 (blue) uses. The demo's database starts empty, so the
-- first release creates it; a real app would have it already.
CREATE TABLE IF NOT EXISTS orders (
    id          bigint PRIMARY KEY,
    item        text NOT NULL,
    legacy_code text
);
