-- The orders the example indexes: 5,000 of them, paid ones and others.
CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY,
    customer text NOT NULL,
    total numeric(12, 2) NOT NULL,
    status text NOT NULL,
    placed_at timestamptz NOT NULL,
    items jsonb NOT NULL
);
INSERT INTO orders
SELECT n,
       'c-' || (n % 97),
       round((n % 500) * 1.37 + 5, 2),
       CASE WHEN n % 10 = 0 THEN 'cancelled' ELSE 'paid' END,
       timestamptz '2026-11-01 00:00:00+00' + n * interval '37 seconds',
       jsonb_build_array(jsonb_build_object('sku', 'sku-' || (n % 13), 'qty', 1 + n % 3))
FROM generate_series(1, 5000) AS n
ON CONFLICT (id) DO NOTHING;
