-- The shop-side contract of handover: the tables (or views with these names) the pipeline reads.
--
-- A shop whose own schema differs maps it onto these names with SQL views; handover only ever
-- SELECTs from them. The DDL is portable between SQLite (the embedded default) and PostgreSQL.
-- Dates are ISO dates ('YYYY-MM-DD'); timestamps without a zone are UTC ('YYYY-MM-DD HH:MM:SS').
-- Amounts are integers in minor units (cents) of the invoice currency.
--
-- What is read: a column marked [doc] is documentation of the shop, never read, and a view may
-- leave it out (so may the tables invoice_lines and support_notes); every other column is read
-- (handover/run/source_rules.py lists them). A table or column marked OPTIONAL may be missing:
-- a run reads a missing table as empty and a missing column as NULL.
--
-- What a view may deliver instead (README, "The shop side"; `handover source check` tests it,
-- and a run checks it before it reads a row; PostgreSQL by declared type, SQLite by the values):
--   ids          integers (and uuid) are read as text; anything else is refused.
--   dates        a timestamptz or ISO text with an offset gives its Europe/Berlin date; a naive
--                timestamp at midnight its date; a naive timestamp with a time of day, text on
--                PostgreSQL, or numbers are refused.
--   timestamps   timestamp (UTC), timestamptz or date.
--   amounts      integer types and numeric(p, 0) only: real, double precision and numeric with
--                decimal places are refused even when their values are whole. Amounts that look
--                like major units (most invoices below 10.00, or most payments or fees below
--                1.00) stop the run unless [source] confirm_minor_units = true.
--   flags        boolean (SQLite: 0 or 1); NULL or text is refused.

-- One row per customer (debtor). Personal data: only the fields an agency may need are read.
CREATE TABLE customers (
    customer_id   TEXT PRIMARY KEY,      -- the shop's internal id; never leaves the shop
    kind          TEXT NOT NULL          -- 'consumer' or 'business'
                  CHECK (kind IN ('consumer', 'business')),
    first_name    TEXT,                  -- consumer's given name (contact person for a business)
    last_name     TEXT,                  -- consumer's family name; required for consumers
    company_name  TEXT,                  -- business's legal name; required for businesses
    date_of_birth DATE,                  -- NULL when unknown; used for the minor rule (8)
    email         TEXT,                  -- NULL when unknown; leaves only with granted consent
    phone         TEXT,                  -- NULL when unknown; leaves only with granted consent
    street        TEXT,                  -- street and house number
    postal_code   TEXT,                  -- DE 5 digits, AT 4 digits
    city          TEXT,
    country       TEXT NOT NULL,         -- ISO 3166-1 alpha-2, e.g. 'DE', 'AT'
    language      TEXT NOT NULL,         -- ISO 639-1, the language to write to the debtor in
    created_at    TIMESTAMP NOT NULL,    -- [doc] when the customer account was created (UTC)
    -- OPTIONAL (a run reads a missing column as NULL): the company (kind 'business', itself no
    -- contact) this customer is a contact person of, when the shop bills contacts of a
    -- company (Odoo: commercial_partner_id). The company is then the debtor: its name, address,
    -- country and language go to the agency with the contact's name; its flags, holds and
    -- unallocated money hold back the contact's cases. NULL = the customer owes itself.
    parent_customer_id TEXT REFERENCES customers (customer_id)
);

-- Protective flags set by the shop. A flag is in force while cleared_at is NULL (rule 7).
CREATE TABLE customer_flags (
    customer_id   TEXT NOT NULL REFERENCES customers (customer_id),
    flag          TEXT NOT NULL          -- 'deceased', 'insolvency' or 'hardship'
                  CHECK (flag IN ('deceased', 'insolvency', 'hardship')),
    set_at        TIMESTAMP NOT NULL,    -- when the flag was set (UTC)
    cleared_at    TIMESTAMP              -- when it was lifted (UTC); NULL = in force
);

-- One row per invoice. A case is an invoice with status 'open' whose due date has passed.
CREATE TABLE invoices (
    invoice_id     TEXT PRIMARY KEY,     -- internal id; never leaves (the agency sees case_ref)
    invoice_number TEXT NOT NULL,        -- the number printed on the invoice the debtor received
    customer_id    TEXT NOT NULL REFERENCES customers (customer_id),
    order_id       TEXT NOT NULL,        -- [doc] internal order id; never leaves
    order_date     DATE NOT NULL,        -- date the contract was made (claim subject, rule 8)
    issued_at      DATE NOT NULL,        -- invoice date
    due_date       DATE NOT NULL,        -- payment due; rules 3, 4 and 9 count from here. In a
                                         -- view, NULL or an unreadable date holds the case back
                                         -- (quarantine invalid_date), never drops it
    amount_cents   INTEGER NOT NULL      -- principal, in minor units (never euros: see above)
                   CHECK (amount_cents >= 0),
    currency       TEXT NOT NULL,        -- ISO 4217, e.g. 'EUR'
    status         TEXT NOT NULL         -- 'open', 'paid', 'cancelled' or 'written_off'
                   CHECK (status IN ('open', 'paid', 'cancelled', 'written_off'))
);

-- OPTIONAL (absent: read as empty): the instalments of an invoice the debtor may pay in parts
-- (Odoo: the payment terms' lines). Each instalment due before as_of is a case of its own: its
-- own due date, dunning, default, notice, limitation and open amount; the agency gets the
-- invoice number with the instalment's number, 1, 2, … by due date (agency_case_v1_1). The
-- amounts add up to the invoice's amount_cents; an invoice id with '#' cannot have instalments
-- (the case key is invoice_id#instalment_id). Otherwise the invoice is held back
-- (invalid_instalment). An invoice without rows here is one case, as before.
CREATE TABLE invoice_instalments (
    instalment_id TEXT PRIMARY KEY,
    invoice_id    TEXT NOT NULL REFERENCES invoices (invoice_id),
    due_date      DATE NOT NULL,         -- when this instalment is due; rules 3, 4, 9 count here
    amount_cents  INTEGER NOT NULL       -- this instalment's principal, in minor units
                  CHECK (amount_cents >= 0)
);

-- Line items. Never read by handover: purchase history can reveal health data (CJEU C-21/23).
CREATE TABLE invoice_lines (
    invoice_id       TEXT NOT NULL REFERENCES invoices (invoice_id),
    line_no          INTEGER NOT NULL,
    sku              TEXT NOT NULL,
    description      TEXT NOT NULL,
    quantity         INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);

-- Money received against an invoice. Only invoice_id and amount_cents are read.
CREATE TABLE payments (
    payment_id   TEXT PRIMARY KEY,  -- [doc]
    invoice_id   TEXT NOT NULL REFERENCES invoices (invoice_id),
    paid_at      TIMESTAMP NOT NULL,     -- UTC
    amount_cents INTEGER NOT NULL,       -- negative = refund or charge-back
    method       TEXT NOT NULL,          -- [doc] e.g. 'sepa_debit', 'card', 'paypal'; never leaves
    iban         TEXT,                   -- [doc] payer's IBAN where known; never read
    -- OPTIONAL: the instalment (invoice_instalments) the payment was made for; NULL = on the
    -- invoice, paying its instalments oldest-due first (§ 366 (2) BGB)
    instalment_id TEXT REFERENCES invoice_instalments (instalment_id)
);

-- Reminders and dunning letters the shop sent (rule 4, default date, fees).
CREATE TABLE dunning_events (
    event_id           TEXT PRIMARY KEY,  -- [doc]
    invoice_id         TEXT NOT NULL REFERENCES invoices (invoice_id),
    kind               TEXT NOT NULL     -- 'reminder' (Zahlungserinnerung), 'dunning' (Mahnung),
                       CHECK (kind IN ('reminder', 'dunning', 'final_notice')),  -- 'final_notice'
    sent_at            TIMESTAMP NOT NULL,  -- when the letter or e-mail LEFT (not when a dunning
                                            -- run created it); UTC, a date is enough; its
                                            -- Europe/Berlin date is what counts
    channel            TEXT NOT NULL     -- [doc] 'email' or 'letter'
                       CHECK (channel IN ('email', 'letter')),
    fee_cents          INTEGER,          -- dunning fee charged with this event; NULL = none
    announces_handover BOOLEAN NOT NULL, -- the letter announced the handover to an agency
    -- OPTIONAL: the instalment (invoice_instalments) the letter dunned; NULL = the whole
    -- invoice, which counts for every instalment due before it was sent (its fee once)
    instalment_id      TEXT REFERENCES invoice_instalments (instalment_id)
);

-- Disputes raised by the debtor (rule 5).
CREATE TABLE disputes (
    dispute_id  TEXT PRIMARY KEY,  -- [doc]
    invoice_id  TEXT NOT NULL REFERENCES invoices (invoice_id),
    opened_at   TIMESTAMP NOT NULL,      -- UTC
    resolved_at TIMESTAMP,               -- UTC; NULL = still open
    outcome     TEXT                     -- NULL while open; 'claim_upheld', 'claim_withdrawn'
                CHECK (outcome IS NULL    -- or 'partially_upheld'
                       OR outcome IN ('claim_upheld', 'claim_withdrawn', 'partially_upheld'))
);

-- Instalment agreements (rule 6).
CREATE TABLE installment_plans (
    plan_id    TEXT PRIMARY KEY,  -- [doc]
    invoice_id TEXT NOT NULL REFERENCES invoices (invoice_id),
    agreed_at  TIMESTAMP NOT NULL,       -- UTC
    status     TEXT NOT NULL             -- 'active', 'completed' or 'defaulted'
               CHECK (status IN ('active', 'completed', 'defaulted'))
);

-- Consent history for optional contact channels. The latest record per customer and purpose
-- (by recorded_at) is in force; e-mail and phone leave only where it is granted.
CREATE TABLE consents (
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    purpose     TEXT NOT NULL            -- 'contact_email' or 'contact_phone'
                CHECK (purpose IN ('contact_email', 'contact_phone')),
    granted     BOOLEAN NOT NULL,        -- true = granted, false = refused or withdrawn
    recorded_at TIMESTAMP NOT NULL,      -- UTC
    source      TEXT NOT NULL            -- where it was given, e.g. 'checkout', 'account', 'letter'
);

-- Free-text notes by the shop's support. Never read by handover.
CREATE TABLE support_notes (
    note_id     TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    created_at  TIMESTAMP NOT NULL,      -- UTC
    body        TEXT NOT NULL
);

-- Manual blocks set by support (a promise to pay by phone, a complaint being handled): on one
-- invoice (invoice_id set) or on all of a customer's invoices (customer_id set) (rule 13).
CREATE TABLE holds (
    hold_id     TEXT PRIMARY KEY,  -- [doc]
    invoice_id  TEXT REFERENCES invoices (invoice_id),
    customer_id TEXT REFERENCES customers (customer_id),
    reason      TEXT NOT NULL,           -- [doc] free text; never read by handover
    set_by      TEXT NOT NULL,           -- [doc] staff member; never read by handover
    set_at      TIMESTAMP NOT NULL,      -- UTC
    expires_at  TIMESTAMP,               -- UTC; NULL = until lifted. OPTIONAL column
    held_until  DATE,                    -- OPTIONAL: the hold's last day (inclusive, Berlin),
                                         -- for shops that keep a date; NULL = no such day
    CHECK (invoice_id IS NOT NULL OR customer_id IS NOT NULL)
);

-- OPTIONAL: a shop without it may leave it out, and a run reads it as empty (`source check`
-- says "absent"). Money received from a customer and not (yet) allocated to an invoice: on the
-- customer's account, a transfer whose reference matched no invoice. While any is unallocated,
-- none of the customer's invoices is handed over (rule 17, unallocated_payment): a bookkeeper
-- allocates it first. Like payments, it counts as it stands at the run, whatever its as_of.
CREATE TABLE unallocated_payments (
    payment_id   TEXT PRIMARY KEY,       -- [doc] never read
    customer_id  TEXT NOT NULL REFERENCES customers (customer_id),
    amount_cents INTEGER NOT NULL,       -- money received, in minor units; > 0 holds the customer
    received_at  TIMESTAMP NOT NULL,     -- UTC (a date is enough)
    allocated_at TIMESTAMP               -- UTC; NULL = not allocated yet
);

CREATE INDEX invoices_status_due ON invoices (status, due_date);
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE INDEX dunning_events_invoice ON dunning_events (invoice_id);
CREATE INDEX disputes_invoice ON disputes (invoice_id);
CREATE INDEX installment_plans_invoice ON installment_plans (invoice_id);
CREATE INDEX customer_flags_customer ON customer_flags (customer_id);
CREATE INDEX consents_customer ON consents (customer_id);
CREATE INDEX holds_invoice ON holds (invoice_id);
CREATE INDEX holds_customer ON holds (customer_id);
CREATE INDEX unallocated_payments_customer ON unallocated_payments (customer_id);
CREATE INDEX invoice_instalments_invoice ON invoice_instalments (invoice_id, due_date);
