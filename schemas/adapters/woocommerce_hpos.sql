-- View pack: WooCommerce with High-Performance Order Storage (HPOS) -> handover's shop-side
-- contract (schemas/shop_source.sql).
--
-- Reads the four HPOS order tables WooCommerce creates (wp_wc_orders, wp_wc_order_addresses,
-- wp_wc_order_operational_data, wp_wc_orders_meta; tests/testdata/adapters/woocommerce_hpos/,
-- WooCommerce 8.8 or later, table prefix 'wp_') plus five small tables of the shop's own for
-- what WooCommerce does not keep, and creates one view per contract table. Tested end to end on
-- SQLite (tests/adapters/test_woocommerce_pack.py); handover reads SQLite and PostgreSQL only,
-- so a WooCommerce shop (MySQL/MariaDB) runs it on a SQLite copy of these tables.
--
-- WHAT WOOCOMMERCE HAS AND WHAT IT DOES NOT
--   has:       orders (wp_wc_orders, type 'shop_order'), refunds (type 'shop_order_refund', a
--              row of their own with parent_order_id and a NEGATIVE total_amount), the billing
--              address of each order (wp_wc_order_addresses, address_type 'billing'), when an
--              order was paid (wp_wc_order_operational_data.date_paid_gmt), order meta.
--   has not:   invoices with numbers and due dates, dunning, disputes, holds, protective
--              flags, consent records, instalment plans, dates of birth, a customer language.
--   So:        invoice = the order bought on account; invoice number = the order number;
--              due date = the order's date + PAYMENT TERM (below); the rest comes from the
--              shop's own tables in section 1, written by whatever sends the shop's reminders
--              and by support. installment_plans is an empty view (WooCommerce knows none).
--
-- CONSTANTS OF THIS PACK (edit them for the shop; each is written once, where it is used)
--   ON-ACCOUNT GATEWAYS  view handover_wc_orders: the payment_method ids of purchase on
--       account ('invoice': e.g. Germanized's and other "pay by invoice" gateways;
--       'german_market_purchase_on_account': German Market). Only these orders are invoices:
--       an unpaid order of any other gateway shipped nothing (prepayment by 'bacs' transfer,
--       an abandoned card checkout) or is a card payment held 'on-hold' by a gateway for a
--       charge-back, and neither is a claim to collect.
--   PAYMENT TERM         view invoices: due_date = order date + 14 days.
--   LANGUAGE             view customers: 'de' for every debtor (WooCommerce keeps none).
--   SITE TIME ZONE       view handover_wc_orders: Europe/Berlin (order dates are the Berlin
--       calendar day of date_created_gmt, as WooCommerce shows them to a German shop's
--       customers; EU summer time: last Sunday of March to last Sunday of October, 01:00 UTC).
--
-- MAPPING DECISIONS (and why)
--   invoices.status      'wc-pending', 'wc-on-hold' -> 'open'; 'wc-processing', 'wc-completed'
--       -> 'paid'; 'wc-cancelled', 'wc-failed' -> 'cancelled'; 'wc-refunded' -> 'cancelled':
--       WooCommerce sets 'wc-refunded' when refunds reach the order total, so nothing is owed
--       and the contract was reversed (goods returned, or a credit for an unpaid on-account
--       order). 'paid' would make a handed-over case's recall say 'paid_in_full', which the
--       debtor never did; 'cancelled' recalls it as 'cancelled'. Other statuses (drafts,
--       'trash', plugins' custom statuses) are no invoices.
--       Assumes the on-account gateway leaves an unpaid order 'wc-on-hold' (or 'wc-pending')
--       until the money arrives: WooCommerce sets date_paid_gmt when an order reaches
--       'wc-processing' and treats it as paid, so a shop that moves unpaid on-account orders
--       to 'processing' to ship them needs its own record of payment; this pack cannot tell.
--   invoices.amount_cents  total_amount minus the order's refunds: a WooCommerce refund lowers
--       what the order costs (a credit). On an unpaid order no money went back, so the refund
--       must not be a negative payment there (that would RAISE the open amount by the credit);
--       on a paid order the money did go back: see payments.
--   payments             a paid order ('wc-processing', 'wc-completed', 'wc-refunded' with
--       date_paid_gmt) has its total as a payment at date_paid_gmt, and each of its refunds as
--       a negative payment at the refund's date_created_gmt: paid = total - refunds = amount,
--       open 0. An open order has no payment (WooCommerce records no part payments); a
--       handed-over case the debtor pays becomes 'paid' with date_paid_gmt as the recall's day.
--   customers            guests (customer_id 0) have no stable id: each guest order is a debtor
--       of its own, 'order:<order id>', with that order's billing address: it is the address
--       the contracting party gave for that contract. A registered user is 'user:<WordPress
--       user id>' with the billing address of the latest order (by date_created_gmt, then id):
--       the most recent address the customer gave, the one WooCommerce also copies into the
--       account. kind 'business' when the billing company is set, else 'consumer'; a company's
--       first/last name is its contact person. street = address_1, then ', ' and address_2
--       when set. date_of_birth is NULL (WooCommerce has none; rule 8 never holds a case back,
--       and `source check` warns about it). Empty strings, which WooCommerce stores for empty
--       fields, are delivered as NULL.
--   ids                  invoice_id and payments/dunning/disputes/holds invoice_id are the
--       integer order id (read as text); customer ids are the text keys above, which the
--       shop's tables in section 1 use as customer_key.
--   left out             unallocated_payments and invoice_instalments (optional: WooCommerce
--       keeps no money on a customer's account, nor instalments; a run reads them as empty),
--       customers.parent_customer_id (a billing company is itself the debtor), holds.expires_at
--       (handover_holds keeps a last day), and the columns a run never reads (order_id,
--       created_at, payment_id, iban, reason, set_by, ...).
--
-- MYSQL / MARIADB: the same statements, except (SQLite here, MySQL to write instead)
--   a || b                      CONCAT(a, b). In MySQL || is a logical OR unless the session
--                               has sql_mode PIPES_AS_CONCAT: without it customer ids become 0/1.
--   CAST(x AS INTEGER)          CAST(x AS SIGNED)  (SQLite keeps SIGNED as a real number)
--   date(x, '+14 days')         DATE_ADD(x, INTERVAL 14 DAY)
--   Berlin day of a UTC time    DATE(CONVERT_TZ(x, '+00:00', 'Europe/Berlin')) (needs the time
--                               zone tables, mysql_tzinfo_to_sql) instead of the CASE with
--                               'weekday 0' in handover_wc_orders
--   BOOLEAN, DATETIME, VARCHAR  as written (SQLite reads them as 0/1, text, text)
--   ROW_NUMBER() OVER (...)     MySQL 8.0 or MariaDB 10.2 and later
--   CAST(x AS CHAR), COALESCE, NULLIF, TRIM, CASE, scalar subqueries with ORDER BY/LIMIT and
--   CHECK constraints (enforced from MySQL 8.0.16) are the same. Table names keep the shop's
--   prefix ('wp_' here).

-- =============================================================================================
-- 1. The shop's own tables: the plugin-free parts of dunning, and what support records.
--    customer_key is the customer_id the customers view gives: 'user:<WordPress user id>' for
--    a registered customer, 'order:<order id>' for a guest (a guest is a debtor per order).
-- =============================================================================================

-- One row per reminder or dunning letter/e-mail that LEFT the shop, written by whatever sends
-- them (a cron job, a mail-merge script, the bookkeeper's letter tool). Read for rule 4, the
-- default date and the fees.
CREATE TABLE handover_dunning (
    event_id           INTEGER PRIMARY KEY,  -- the sender's own id of the letter or e-mail
    order_id           BIGINT NOT NULL,      -- wp_wc_orders.id of the order dunned
    kind               VARCHAR(20) NOT NULL  -- 'reminder' (Zahlungserinnerung), 'dunning'
                       CHECK (kind IN ('reminder', 'dunning', 'final_notice')),  -- (Mahnung),
                                             -- 'final_notice' (letzte Mahnung)
    sent_at            DATETIME NOT NULL,    -- when it left (posted, e-mail sent), UTC
                                             -- 'YYYY-MM-DD HH:MM:SS'; not when it was generated:
                                             -- the 14 days' notice counts from here
    channel            VARCHAR(10) NOT NULL  -- 'email' or 'letter'
                       CHECK (channel IN ('email', 'letter')),
    fee_cents          INTEGER,              -- dunning fee charged with it, in cents; NULL = none
    announces_handover BOOLEAN NOT NULL      -- 1 = it announced the handover to an agency
);
CREATE INDEX handover_dunning_order ON handover_dunning (order_id);

-- Protective flags set by support (rule 7): the customer died, is insolvent, or in hardship.
CREATE TABLE handover_customer_flags (
    customer_key VARCHAR(40) NOT NULL,       -- see above: 'user:<id>' or 'order:<id>'
    flag         VARCHAR(20) NOT NULL        -- 'deceased', 'insolvency' or 'hardship'
                 CHECK (flag IN ('deceased', 'insolvency', 'hardship')),
    set_at       DATETIME NOT NULL,          -- when it was set, UTC
    cleared_at   DATETIME                    -- when it was lifted, UTC; NULL = in force
);

-- Consent to be contacted by the agency by e-mail or phone. The latest row per customer and
-- purpose is in force; without a granted one, e-mail and phone never leave.
CREATE TABLE handover_consents (
    customer_key VARCHAR(40) NOT NULL,       -- 'user:<id>' or 'order:<id>'
    purpose      VARCHAR(20) NOT NULL        -- 'contact_email' or 'contact_phone'
                 CHECK (purpose IN ('contact_email', 'contact_phone')),
    granted      BOOLEAN NOT NULL,           -- 1 = granted, 0 = refused or withdrawn
    recorded_at  DATETIME NOT NULL,          -- when it was given or withdrawn, UTC
    source       VARCHAR(20) NOT NULL        -- where: 'checkout', 'account', 'letter', ...
);

-- Disputes the customer raised about an order (rule 5): while open (resolved_at NULL), and
-- when resolved 'claim_withdrawn' or 'partially_upheld', the order is not handed over.
CREATE TABLE handover_disputes (
    dispute_id  INTEGER PRIMARY KEY,
    order_id    BIGINT NOT NULL,             -- wp_wc_orders.id
    opened_at   DATETIME NOT NULL,           -- UTC
    resolved_at DATETIME,                    -- UTC; NULL = still open
    outcome     VARCHAR(20)                  -- NULL while open
                CHECK (outcome IS NULL
                       OR outcome IN ('claim_upheld', 'claim_withdrawn', 'partially_upheld'))
);

-- Holds by support (rule 13): a promise to pay by phone, a complaint being handled. On one
-- order, or on all orders of a customer; lifted by deleting the row, or ended by held_until.
CREATE TABLE handover_holds (
    hold_id      INTEGER PRIMARY KEY,
    order_id     BIGINT,                     -- the order held; NULL = see customer_key
    customer_key VARCHAR(40),                -- the customer held; NULL = see order_id
    set_at       DATETIME NOT NULL,          -- UTC
    held_until   DATE,                       -- last day held (inclusive, Berlin); NULL = until
                                             -- the row is deleted
    CHECK (order_id IS NOT NULL OR customer_key IS NOT NULL)
);

-- =============================================================================================
-- 2. Views: one per contract table (the names handover SELECTs from), and one helper.
-- =============================================================================================

-- Helper: every real order with its customer key and its Berlin calendar day.
-- ON-ACCOUNT GATEWAYS and SITE TIME ZONE are here.
CREATE VIEW handover_wc_orders AS
SELECT o.id AS order_id,
       CASE WHEN COALESCE(o.customer_id, 0) = 0 THEN 'order:' || CAST(o.id AS CHAR)
            ELSE 'user:' || CAST(o.customer_id AS CHAR)
       END AS customer_key,
       o.date_created_gmt AS created_gmt,
       -- Berlin day: UTC + 2 hours in summer time (last Sunday of March 01:00 UTC to last
       -- Sunday of October 01:00 UTC; 'weekday 0' is the first Sunday on or after the 25th).
       date(o.date_created_gmt,
            CASE WHEN o.date_created_gmt
                          >= date(substr(o.date_created_gmt, 1, 4) || '-03-25', 'weekday 0')
                             || ' 01:00:00'
                      AND o.date_created_gmt
                          < date(substr(o.date_created_gmt, 1, 4) || '-10-25', 'weekday 0')
                            || ' 01:00:00'
                 THEN '+2 hours' ELSE '+1 hours'
            END) AS created_day,
       CASE WHEN o.payment_method IN ('invoice', 'german_market_purchase_on_account')
            THEN 1 ELSE 0
       END AS on_account
FROM wp_wc_orders o
WHERE o.type = 'shop_order'
  AND o.status IN ('wc-pending', 'wc-on-hold', 'wc-processing', 'wc-completed',
                   'wc-cancelled', 'wc-failed', 'wc-refunded');

-- One debtor per registered user (its latest order's billing address) and per guest order.
-- LANGUAGE is here.
CREATE VIEW customers AS
SELECT k.customer_key AS customer_id,
       CASE WHEN NULLIF(TRIM(a.company), '') IS NULL THEN 'consumer' ELSE 'business'
       END AS kind,
       NULLIF(TRIM(a.first_name), '') AS first_name,
       NULLIF(TRIM(a.last_name), '') AS last_name,
       NULLIF(TRIM(a.company), '') AS company_name,
       NULL AS date_of_birth,                 -- WooCommerce keeps none
       COALESCE(NULLIF(TRIM(a.email), ''), NULLIF(TRIM(o.billing_email), '')) AS email,
       NULLIF(TRIM(a.phone), '') AS phone,
       NULLIF(TRIM(COALESCE(a.address_1, '')
                   || CASE WHEN NULLIF(TRIM(a.address_2), '') IS NULL THEN ''
                           ELSE ', ' || TRIM(a.address_2)
                      END), '') AS street,
       NULLIF(TRIM(a.postcode), '') AS postal_code,
       NULLIF(TRIM(a.city), '') AS city,
       NULLIF(TRIM(a.country), '') AS country,
       'de' AS language
FROM (SELECT order_id, customer_key,
             ROW_NUMBER() OVER (PARTITION BY customer_key
                                ORDER BY created_gmt DESC, order_id DESC) AS recency
      FROM handover_wc_orders) k
JOIN wp_wc_orders o ON o.id = k.order_id
-- LEFT: an order without a billing address still gives its debtor (rule 11 then holds the
-- case back as incomplete, and a missing country is quarantined) rather than an orphan.
LEFT JOIN wp_wc_order_addresses a ON a.order_id = k.order_id AND a.address_type = 'billing'
WHERE k.recency = 1;

-- The orders bought on account. PAYMENT TERM is here.
CREATE VIEW invoices AS
SELECT o.id AS invoice_id,
       -- the order number the customer saw: a sequential-numbers plugin's '_order_number'
       -- (a PDF-invoice plugin's own number, e.g. '_wcpdf_invoice_number', could come first),
       -- else the order id, which is WooCommerce's own order number
       COALESCE((SELECT NULLIF(TRIM(m.meta_value), '')
                 FROM wp_wc_orders_meta m
                 WHERE m.order_id = o.id AND m.meta_key = '_order_number'
                 ORDER BY m.id DESC
                 LIMIT 1),
                CAST(o.id AS CHAR)) AS invoice_number,
       k.customer_key AS customer_id,
       o.id AS order_id,
       k.created_day AS order_date,
       k.created_day AS issued_at,            -- the order confirmation is the invoice
       date(k.created_day, '+14 days') AS due_date,
       -- total minus refunds (refund rows carry negative totals); cents, rounded per row
       CAST(ROUND(o.total_amount * 100) AS INTEGER)
       + COALESCE((SELECT SUM(CAST(ROUND(r.total_amount * 100) AS INTEGER))
                   FROM wp_wc_orders r
                   WHERE r.parent_order_id = o.id AND r.type = 'shop_order_refund'), 0)
           AS amount_cents,
       o.currency,
       CASE o.status
            WHEN 'wc-pending' THEN 'open'
            WHEN 'wc-on-hold' THEN 'open'
            WHEN 'wc-processing' THEN 'paid'
            WHEN 'wc-completed' THEN 'paid'
            ELSE 'cancelled'                  -- 'wc-cancelled', 'wc-failed', 'wc-refunded'
       END AS status
FROM wp_wc_orders o
JOIN handover_wc_orders k ON k.order_id = o.id
WHERE k.on_account = 1;

-- A paid order's own payment, and the refunds of paid orders (money that went back).
CREATE VIEW payments AS
SELECT o.id AS invoice_id,
       d.date_paid_gmt AS paid_at,
       CAST(ROUND(o.total_amount * 100) AS INTEGER) AS amount_cents,
       o.payment_method AS method
FROM wp_wc_orders o
JOIN wp_wc_order_operational_data d ON d.order_id = o.id
WHERE o.type = 'shop_order'
  AND o.status IN ('wc-processing', 'wc-completed', 'wc-refunded')
  AND d.date_paid_gmt IS NOT NULL
UNION ALL
SELECT r.parent_order_id AS invoice_id,
       r.date_created_gmt AS paid_at,
       CAST(ROUND(r.total_amount * 100) AS INTEGER) AS amount_cents,  -- negative
       'refund' AS method
FROM wp_wc_orders r
JOIN wp_wc_orders o ON o.id = r.parent_order_id
JOIN wp_wc_order_operational_data d ON d.order_id = o.id
WHERE r.type = 'shop_order_refund'
  AND o.status IN ('wc-processing', 'wc-completed', 'wc-refunded')
  AND d.date_paid_gmt IS NOT NULL;

CREATE VIEW dunning_events AS
SELECT d.event_id,
       d.order_id AS invoice_id,
       d.kind,
       d.sent_at,
       d.channel,
       d.fee_cents,
       d.announces_handover
FROM handover_dunning d;

CREATE VIEW disputes AS
SELECT s.dispute_id,
       s.order_id AS invoice_id,
       s.opened_at,
       s.resolved_at,
       s.outcome
FROM handover_disputes s;

-- WooCommerce knows no instalment agreements: always empty. A shop that agrees instalments
-- with a debtor records them in a table shaped like the contract's and selects from it here;
-- until then, support puts a hold on the order (rule 13) while instalments are paid.
CREATE VIEW installment_plans AS
SELECT NULL AS plan_id,
       NULL AS invoice_id,
       NULL AS agreed_at,
       NULL AS status
FROM handover_dunning
WHERE 1 = 0;

CREATE VIEW customer_flags AS
SELECT f.customer_key AS customer_id,
       f.flag,
       f.set_at,
       f.cleared_at
FROM handover_customer_flags f;

CREATE VIEW consents AS
SELECT c.customer_key AS customer_id,
       c.purpose,
       c.granted,
       c.recorded_at,
       c.source
FROM handover_consents c;

CREATE VIEW holds AS
SELECT h.hold_id,
       h.order_id AS invoice_id,
       h.customer_key AS customer_id,
       h.set_at,
       h.held_until
FROM handover_holds h;
