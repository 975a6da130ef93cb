-- WooCommerce HPOS ("High-Performance Order Storage", custom order tables): the four order tables,
-- verbatim as WooCommerce creates them in MySQL/MariaDB.
--
-- Source: github.com/woocommerce/woocommerce
--   file     plugins/woocommerce/src/Internal/DataStores/Orders/OrdersTableDataStore.php
--   commit   40875d41297358c87ce4d7a9a8685ee3525acd18 (the stored version of that file; it carries
--            hooks marked "@since 8.8.0", so it is WooCommerce 8.8 or later)
--   function OrdersTableDataStore::get_database_schema() -- returns one string with the four
--            CREATE TABLE statements, which WooCommerce runs through WordPress' dbDelta().
--
-- Copied character for character (tabs kept) except for the PHP placeholders, resolved as follows:
--   $orders_table_name           -> wp_wc_orders               ($wpdb->prefix . 'wc_orders', prefix wp_)
--   $addresses_table_name        -> wp_wc_order_addresses
--   $operational_data_table_name -> wp_wc_order_operational_data
--   $meta_table                  -> wp_wc_orders_meta
--   $max_index_length            -> 191  (DatabaseUtil::get_max_index_length(): filter
--                                          'woocommerce_database_max_index_length', default 191)
--   $composite_customer_id_email_length -> 171  (max($max_index_length - 20, 20))
--   $composite_meta_value_index_length  -> 82   (max($max_index_length - 8 - 100 - 1, 20))
--   $collate                     -> dropped  (would be $wpdb->get_charset_collate(), e.g.
--                                             "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci")
-- Note: wp_wc_orders.id has no AUTO_INCREMENT: the id is taken from a wp_posts row (a placeholder post
-- of type shop_order_placehold, or the order's own post while sync with the posts table is on).
-- status is stored with the 'wc-' prefix ('wc-pending', 'wc-processing', 'wc-on-hold',
-- 'wc-completed', 'wc-cancelled', 'wc-refunded', 'wc-failed', 'wc-checkout-draft'), except the WordPress
-- statuses 'trash', 'auto-draft' and 'draft'.
-- Checked: loads into MariaDB 10.11 (throwaway server, mariadb client); no MySQL server was at hand.

CREATE TABLE wp_wc_orders (
	id bigint(20) unsigned,
	status varchar(20) null,
	currency varchar(10) null,
	type varchar(20) null,
	tax_amount decimal(26,8) null,
	total_amount decimal(26,8) null,
	customer_id bigint(20) unsigned null,
	billing_email varchar(320) null,
	date_created_gmt datetime null,
	date_updated_gmt datetime null,
	parent_order_id bigint(20) unsigned null,
	payment_method varchar(100) null,
	payment_method_title text null,
	transaction_id varchar(100) null,
	ip_address varchar(100) null,
	user_agent text null,
	customer_note text null,
	PRIMARY KEY (id),
	KEY status (status),
	KEY date_created (date_created_gmt),
	KEY customer_id_billing_email (customer_id, billing_email(171)),
	KEY billing_email (billing_email(191)),
	KEY type_status_date (type, status, date_created_gmt),
	KEY parent_order_id (parent_order_id),
	KEY date_updated (date_updated_gmt)
);
CREATE TABLE wp_wc_order_addresses (
	id bigint(20) unsigned auto_increment primary key,
	order_id bigint(20) unsigned NOT NULL,
	address_type varchar(20) null,
	first_name text null,
	last_name text null,
	company text null,
	address_1 text null,
	address_2 text null,
	city text null,
	state text null,
	postcode text null,
	country text null,
	email varchar(320) null,
	phone varchar(100) null,
	KEY order_id (order_id),
	UNIQUE KEY address_type_order_id (address_type, order_id),
	KEY email (email(191)),
	KEY phone (phone)
);
CREATE TABLE wp_wc_order_operational_data (
	id bigint(20) unsigned auto_increment primary key,
	order_id bigint(20) unsigned NULL,
	created_via varchar(100) NULL,
	woocommerce_version varchar(20) NULL,
	prices_include_tax tinyint(1) NULL,
	coupon_usages_are_counted tinyint(1) NULL,
	download_permission_granted tinyint(1) NULL,
	cart_hash varchar(100) NULL,
	new_order_email_sent tinyint(1) NULL,
	order_key varchar(100) NULL,
	order_stock_reduced tinyint(1) NULL,
	date_paid_gmt datetime NULL,
	date_completed_gmt datetime NULL,
	shipping_tax_amount decimal(26,8) NULL,
	shipping_total_amount decimal(26,8) NULL,
	discount_tax_amount decimal(26,8) NULL,
	discount_total_amount decimal(26,8) NULL,
	recorded_sales tinyint(1) NULL,
	UNIQUE KEY order_id (order_id),
	KEY order_key (order_key)
);
CREATE TABLE wp_wc_orders_meta (
	id bigint(20) unsigned auto_increment primary key,
	order_id bigint(20) unsigned null,
	meta_key varchar(255),
	meta_value text null,
	KEY meta_key_value (meta_key(100), meta_value(82)),
	KEY order_id_meta_key_meta_value (order_id, meta_key(100), meta_value(82))
);
