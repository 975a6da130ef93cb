-- WooCommerce HPOS order tables for SQLite: ddl_mysql.sql (beside this file), translated mechanically
-- so that SQLite accepts them, for tests on the embedded SQLite default.
--
-- Source of ddl_mysql.sql: github.com/woocommerce/woocommerce @ 40875d41297358c87ce4d7a9a8685ee3525acd18,
-- plugins/woocommerce/src/Internal/DataStores/Orders/OrdersTableDataStore.php,
-- OrdersTableDataStore::get_database_schema().
--
-- Every column is kept, in the same order, with its name and nullability. Only these changes:
--   bigint(20) unsigned                      -> INTEGER  (SQLite has no unsigned or display width)
--   ... auto_increment primary key           -> INTEGER PRIMARY KEY (SQLite's rowid alias assigns ids)
--   wp_wc_orders.id + PRIMARY KEY (id)       -> id INTEGER PRIMARY KEY. MySQL has no auto_increment
--                                               here (the id comes from a wp_posts row); SQLite would
--                                               assign one if id is left NULL, so fixtures set it.
--   varchar(n), text                         -> TEXT     (SQLite does not enforce lengths)
--   decimal(26,8)                            -> NUMERIC  (major units with 8 decimals, e.g. 119.00000000)
--   datetime                                 -> TEXT     ('YYYY-MM-DD HH:MM:SS', GMT/UTC as the *_gmt names say)
--   tinyint(1)                               -> INTEGER  (0/1)
--   "null" / "NULL" column suffixes          -> dropped (SQLite columns are nullable by default);
--                                               NOT NULL kept where MySQL has it (wp_wc_order_addresses.order_id)
--   KEY name (cols) / UNIQUE KEY name (cols) -> CREATE [UNIQUE] INDEX <table>_<name> ON <table> (cols)
--                                               after the table: SQLite has no inline KEY clause, index
--                                               names are schema-wide (hence the table prefix: "order_id"
--                                               exists on two tables), and it has no prefix indexes, so
--                                               the MySQL prefix lengths (171, 191, 100, 82) are dropped.
--   table options ($collate)                 -> none (none in ddl_mysql.sql either)
-- Checked: loads with python3 -c "import sqlite3; sqlite3.connect(':memory:').executescript(...)".

CREATE TABLE wp_wc_orders (
	id INTEGER PRIMARY KEY,            -- bigint(20) unsigned, PRIMARY KEY (id)
	status TEXT,                       -- varchar(20) null
	currency TEXT,                     -- varchar(10) null
	type TEXT,                         -- varchar(20) null
	tax_amount NUMERIC,                -- decimal(26,8) null
	total_amount NUMERIC,              -- decimal(26,8) null
	customer_id INTEGER,               -- bigint(20) unsigned null
	billing_email TEXT,                -- varchar(320) null
	date_created_gmt TEXT,             -- datetime null
	date_updated_gmt TEXT,             -- datetime null
	parent_order_id INTEGER,           -- bigint(20) unsigned null
	payment_method TEXT,               -- varchar(100) null
	payment_method_title TEXT,         -- text null
	transaction_id TEXT,               -- varchar(100) null
	ip_address TEXT,                   -- varchar(100) null
	user_agent TEXT,                   -- text null
	customer_note TEXT                 -- text null
);
CREATE INDEX wp_wc_orders_status ON wp_wc_orders (status);
CREATE INDEX wp_wc_orders_date_created ON wp_wc_orders (date_created_gmt);
CREATE INDEX wp_wc_orders_customer_id_billing_email ON wp_wc_orders (customer_id, billing_email);
CREATE INDEX wp_wc_orders_billing_email ON wp_wc_orders (billing_email);
CREATE INDEX wp_wc_orders_type_status_date ON wp_wc_orders (type, status, date_created_gmt);
CREATE INDEX wp_wc_orders_parent_order_id ON wp_wc_orders (parent_order_id);
CREATE INDEX wp_wc_orders_date_updated ON wp_wc_orders (date_updated_gmt);

CREATE TABLE wp_wc_order_addresses (
	id INTEGER PRIMARY KEY,            -- bigint(20) unsigned auto_increment primary key
	order_id INTEGER NOT NULL,         -- bigint(20) unsigned NOT NULL
	address_type TEXT,                 -- varchar(20) null  ('billing' or 'shipping')
	first_name TEXT,                   -- text null
	last_name TEXT,                    -- text null
	company TEXT,                      -- text null
	address_1 TEXT,                    -- text null
	address_2 TEXT,                    -- text null
	city TEXT,                         -- text null
	state TEXT,                        -- text null
	postcode TEXT,                     -- text null
	country TEXT,                      -- text null
	email TEXT,                        -- varchar(320) null
	phone TEXT                         -- varchar(100) null
);
CREATE INDEX wp_wc_order_addresses_order_id ON wp_wc_order_addresses (order_id);
CREATE UNIQUE INDEX wp_wc_order_addresses_address_type_order_id ON wp_wc_order_addresses (address_type, order_id);
CREATE INDEX wp_wc_order_addresses_email ON wp_wc_order_addresses (email);
CREATE INDEX wp_wc_order_addresses_phone ON wp_wc_order_addresses (phone);

CREATE TABLE wp_wc_order_operational_data (
	id INTEGER PRIMARY KEY,            -- bigint(20) unsigned auto_increment primary key
	order_id INTEGER,                  -- bigint(20) unsigned NULL
	created_via TEXT,                  -- varchar(100) NULL
	woocommerce_version TEXT,          -- varchar(20) NULL
	prices_include_tax INTEGER,        -- tinyint(1) NULL
	coupon_usages_are_counted INTEGER, -- tinyint(1) NULL
	download_permission_granted INTEGER, -- tinyint(1) NULL
	cart_hash TEXT,                    -- varchar(100) NULL
	new_order_email_sent INTEGER,      -- tinyint(1) NULL
	order_key TEXT,                    -- varchar(100) NULL
	order_stock_reduced INTEGER,       -- tinyint(1) NULL
	date_paid_gmt TEXT,                -- datetime NULL
	date_completed_gmt TEXT,           -- datetime NULL
	shipping_tax_amount NUMERIC,       -- decimal(26,8) NULL
	shipping_total_amount NUMERIC,     -- decimal(26,8) NULL
	discount_tax_amount NUMERIC,       -- decimal(26,8) NULL
	discount_total_amount NUMERIC,     -- decimal(26,8) NULL
	recorded_sales INTEGER             -- tinyint(1) NULL
);
CREATE UNIQUE INDEX wp_wc_order_operational_data_order_id ON wp_wc_order_operational_data (order_id);
CREATE INDEX wp_wc_order_operational_data_order_key ON wp_wc_order_operational_data (order_key);

CREATE TABLE wp_wc_orders_meta (
	id INTEGER PRIMARY KEY,            -- bigint(20) unsigned auto_increment primary key
	order_id INTEGER,                  -- bigint(20) unsigned null
	meta_key TEXT,                     -- varchar(255)
	meta_value TEXT                    -- text null
);
CREATE INDEX wp_wc_orders_meta_meta_key_value ON wp_wc_orders_meta (meta_key, meta_value);
CREATE INDEX wp_wc_orders_meta_order_id_meta_key_meta_value ON wp_wc_orders_meta (order_id, meta_key, meta_value);
