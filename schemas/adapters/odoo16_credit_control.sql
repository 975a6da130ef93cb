-- handover view pack: Odoo 16 (Community) + OCA account_credit_control + OCA privacy_consent,
-- on PostgreSQL, mapped onto the shop-side contract `schemas/shop_source.sql`.
--
-- What it maps (tables as Odoo 16's ORM creates them; tests/testdata/adapters/odoo16/ and its
-- PROVENANCE.md name the sources):
--   res_partner, res_country, res_currency, account_account, account_move, account_move_line,
--   account_partial_reconcile (core); credit_control_line (OCA/credit-control 16.0,
--   account_credit_control); privacy_activity, privacy_consent (OCA/data-protection 16.0,
--   privacy_consent); res_partner_category and res_partner_res_partner_category_rel (core
--   partner tags, created by `base`; not in the DDL copy, so the tests create them).
-- Run it in the Odoo database (or a database with foreign tables of the same names) as a role
-- that may read those tables; handover only SELECTs from the views. One view per contract table
-- handover reads; `invoice_lines` and `support_notes` are never read, so there are none. Columns
-- the contract only documents (invoices.order_id, payments.method, dunning_events.
-- announces_handover, ...) are left out where Odoo has nothing honest to put there: a run reads
-- only the columns of handover/run/source_rules.py COLUMNS (and the fact times).
-- The pack assumes one company: a database with several adds a condition on the company_id of
-- the moves, move lines and credit-control lines to the views that read them.
--
-- What the shop must configure:
--   1. handover.toml: the credit-control levels of its policy, delivered as dunning_events.kind
--      (the view leaves announces_handover out, so every level must say it). With the usual
--      three-level policy (level 3 = the letter that announces the collection agency):
--
--        [source.dunning_levels]
--        "1" = { kind = "reminder", announces_handover = false }
--        "2" = { kind = "dunning", announces_handover = false }
--        "3" = { kind = "final_notice", announces_handover = true }
--
--      A level the table does not list holds its invoice back (invalid_dunning_event). Only
--      list a level as announcing when its letter (credit_control_policy_level.custom_text /
--      custom_mail_text) really names the handover to an agency.
--   2. privacy_consent: two privacy activities (Settings > Privacy > Activities) named, in
--      English (name->>'en_US'), exactly 'contact_email' and 'contact_phone'; a partner's
--      consent record for them is the consent handover reads. Other activities are ignored.
--   3. Partner tags (Contacts > Configuration > Tags) named, in English, 'insolvency',
--      'deceased' and 'hardship' for the protective flags; tag the debtor (the company for a
--      company's contacts). Odoo keeps no date for a tag: see customer_flags.
--   4. The shop's default language below ('de') for partners without a language.
--   5. Receivables: every invoice's receivable lines on accounts of type 'asset_receivable'
--      (Odoo's default); amounts are taken in the invoice currency.
--
-- Type rules (README, "The shop side"): ids are text (CAST(id AS text)); dates are `date`;
-- timestamps are Odoo's naive UTC `timestamp` (or a `date`); amounts are Odoo numeric major
-- units, delivered as CAST(ROUND(x * 100) AS bigint) minor units; a NULL column gets a typed
-- NULL (CAST(NULL AS ...)), since an untyped NULL in a view is `text` to PostgreSQL.

-- Invoices: customer invoices (move_type 'out_invoice') that were posted; 'cancel' ones too, so
-- a cancelled invoice at an agency is recalled. Drafts are no claim yet. Credit notes
-- (out_refund) are not invoices here: reconciled against an invoice they reduce what it owes
-- (see payments).
CREATE VIEW invoices AS
SELECT
    CAST(m.id AS text) AS invoice_id,
    m.name AS invoice_number,
    -- The invoice's partner, except an address of a private person (an 'invoice' or 'delivery'
    -- child of a non-company): handover accepts only a company as parent_customer_id, so such an
    -- invoice is the person's own (Odoo's commercial partner), with the person's name, address,
    -- flags, consents and unallocated money (see customers).
    CAST(
        CASE
            WHEN p.commercial_partner_id IS NULL OR p.commercial_partner_id = p.id
                OR cp.is_company THEN m.partner_id
            ELSE p.commercial_partner_id
        END AS text
    ) AS customer_id,
    -- Odoo keeps no order date on the move (sale.order.date_order lives in the `sale` addon): the
    -- invoice date is the contract's date for the claim subject and rule 8.
    m.invoice_date AS order_date,
    m.invoice_date AS issued_at,
    -- Odoo's invoice_date_due is the latest payment-term line's maturity; an invoice in
    -- instalments is read by its instalments' own due dates (invoice_instalments).
    m.invoice_date_due AS due_date,
    CAST(ROUND(m.amount_total * 100) AS bigint) AS amount_cents,
    cur.name AS currency,
    CASE
        WHEN m.state = 'cancel' THEN 'cancelled'
        -- 'in_payment': paid, waiting for the bank statement; 'reversed': a credit note for the
        -- whole amount. A write-off is a reconciliation too, so it shows as 'paid'.
        WHEN m.payment_state IN ('paid', 'in_payment', 'reversed') THEN 'paid'
        ELSE 'open'
    END AS status
FROM account_move AS m
JOIN res_currency AS cur ON cur.id = m.currency_id
LEFT JOIN res_partner AS p ON p.id = m.partner_id
LEFT JOIN res_partner AS cp ON cp.id = p.commercial_partner_id
WHERE m.move_type = 'out_invoice'
  AND m.state IN ('posted', 'cancel');

-- Instalments: Odoo 16 splits an invoice's receivable by its payment terms into one
-- account_move_line per instalment (display_type 'payment_term', date_maturity, amount in the
-- invoice currency). An invoice with a single such line is a whole invoice and gets no rows here
-- (one case, as without instalments). The lines' amounts add up to amount_total (Odoo rounds
-- each to the currency), as handover requires.
CREATE VIEW invoice_instalments AS
SELECT
    CAST(l.id AS text) AS instalment_id,
    CAST(l.move_id AS text) AS invoice_id,
    l.date_maturity AS due_date,
    CAST(ROUND(l.amount_currency * 100) AS bigint) AS amount_cents
FROM account_move_line AS l
JOIN account_move AS m ON m.id = l.move_id
WHERE l.display_type = 'payment_term'
  AND m.move_type = 'out_invoice'
  AND m.state IN ('posted', 'cancel')
  AND l.move_id IN (
      SELECT move_id FROM account_move_line
      WHERE display_type = 'payment_term'
      GROUP BY move_id
      HAVING COUNT(*) > 1
  );

-- Customers: every partner (a run reads only its cases' customers and their companies).
CREATE VIEW customers AS
SELECT
    CAST(p.id AS text) AS customer_id,
    CASE WHEN p.is_company THEN 'business' ELSE 'consumer' END AS kind,
    -- Odoo has one name field: a person's whole name is the last name (README: "A consumer with
    -- one name field delivers it as last_name with first_name NULL").
    CAST(NULL AS text) AS first_name,
    CASE WHEN p.is_company THEN NULL ELSE p.name END AS last_name,
    CASE WHEN p.is_company THEN p.name END AS company_name,
    -- Odoo keeps no date of birth: rule 8 (minor) never holds a case back.
    CAST(NULL AS date) AS date_of_birth,
    p.email,
    -- The mobile number first: the one a debtor is more likely to answer (leaves only with the
    -- contact_phone consent and where the agency's policy lists phone).
    COALESCE(NULLIF(TRIM(p.mobile), ''), p.phone) AS phone,
    -- Odoo's second address line (a c/o, a floor) goes after the street, as on a letter.
    NULLIF(CONCAT_WS(', ', NULLIF(TRIM(p.street), ''), NULLIF(TRIM(p.street2), '')), '')
        AS street,
    p.zip AS postal_code,
    p.city,
    -- A contact without a country of its own takes its company's: Odoo syncs the address of
    -- 'contact' children from the parent, but a NULL country would hold the case back
    -- (invalid_country) although the company, the debtor, has one.
    COALESCE(c.code, cc.code) AS country,
    -- Odoo's lang is a locale ('de_DE', 'de_AT', 'en_US'); the contract wants ISO 639-1. A
    -- partner without a language gets the shop's: 'de' (change it for another shop).
    COALESCE(LOWER(LEFT(NULLIF(p.lang, ''), 2)), 'de') AS language,
    p.create_date AS created_at,
    -- A contact of a company: the company (Odoo's commercial partner) is the debtor. Only a
    -- company: an address under a private person is mapped to the person in invoices instead.
    CASE
        WHEN p.commercial_partner_id <> p.id AND cp.is_company
            THEN CAST(p.commercial_partner_id AS text)
    END AS parent_customer_id
FROM res_partner AS p
LEFT JOIN res_country AS c ON c.id = p.country_id
LEFT JOIN res_partner AS cp ON cp.id = p.commercial_partner_id
LEFT JOIN res_country AS cc ON cc.id = cp.country_id;

-- Payments: what Odoo reconciled against an invoice's receivable lines, partial by partial: a
-- customer payment, a bank statement line, a credit note (out_refund) or a write-off all reduce
-- what the invoice owes. Un-reconciling (a charge-back, a payment undone) deletes the partial,
-- so the view shows the money as it stands now, as handover wants. debit_amount_currency is the
-- part of the invoice line settled, in the invoice's currency.
CREATE VIEW payments AS
SELECT
    CAST(r.id AS text) AS payment_id,
    CAST(l.move_id AS text) AS invoice_id,
    -- max_date: the later of the two lines' dates, i.e. the day the money was booked (a date is
    -- enough for the contract).
    r.max_date AS paid_at,
    CAST(ROUND(r.debit_amount_currency * 100) AS bigint) AS amount_cents,
    -- Odoo reconciles against one payment-term line, so a payment on an invoice in instalments
    -- names its instalment; on a whole invoice NULL (naming a line the invoice has no
    -- instalment for would hold the invoice back as invalid_instalment).
    CASE
        WHEN CAST(r.debit_move_id AS text) IN (SELECT instalment_id FROM invoice_instalments)
            THEN CAST(r.debit_move_id AS text)
    END AS instalment_id
FROM account_partial_reconcile AS r
JOIN account_move_line AS l ON l.id = r.debit_move_id AND l.display_type = 'payment_term'
JOIN account_move AS m ON m.id = l.move_id
WHERE m.move_type = 'out_invoice'
  AND m.state IN ('posted', 'cancel');

-- Dunning events: OCA credit-control lines that were sent, by letter or e-mail (a phone call
-- is no letter and never counts as a notice). Drafts, ignored, queued and failed lines never
-- reached the debtor.
CREATE VIEW dunning_events AS
SELECT
    CAST(cl.id AS text) AS event_id,
    CAST(cl.invoice_id AS text) AS invoice_id,
    -- The policy level (1, 2, 3; the line's stored copy of policy_level_id.level), read by
    -- [source.dunning_levels] (header); the view leaves announces_handover out because every
    -- level there says whether it announces.
    CAST(cl.level AS text) AS kind,
    -- When the letter LEFT. credit_control_line.date is the dunning RUN's date (when the line
    -- was created), not when it was sent, and must not be used: the notice period counts from
    -- the sending. OCA 16.0 never writes date_sent, so write_date (the line's last change: when
    -- it was marked sent, naive UTC) is the best stored value; a line edited after sending
    -- would move it later, which only shortens what counts as given notice. Odoo's mail
    -- tracking (mail_tracking_value on the line's state) has the exact time, for a shop that
    -- wants it.
    COALESCE(CAST(cl.date_sent AS timestamp), cl.write_date) AS sent_at,
    cl.channel,
    -- The base module charges no fee. With OCA account_credit_control_dunning_fees:
    -- CAST(ROUND(cl.dunning_fees_amount * 100) AS bigint).
    CAST(NULL AS bigint) AS fee_cents,
    -- Each credit-control line duns one receivable line: on an invoice in instalments that is
    -- one instalment; on a whole invoice NULL (the whole invoice).
    CASE
        WHEN CAST(cl.move_line_id AS text) IN (SELECT instalment_id FROM invoice_instalments)
            THEN CAST(cl.move_line_id AS text)
    END AS instalment_id
FROM credit_control_line AS cl
JOIN account_move AS m ON m.id = cl.invoice_id
WHERE cl.state = 'sent'
  AND cl.channel IN ('letter', 'email')
  AND m.move_type = 'out_invoice'
  AND m.state IN ('posted', 'cancel');

-- Disputes: Odoo's "No Follow-up" (litigation) flag, account_move_line.blocked, on an
-- invoice's receivable line. Set = an open dispute; cleared = no row (Odoo keeps no history of
-- the flag, so a dispute that ended leaves no trace, and none can be 'claim_withdrawn').
-- handover holds back every instalment of an invoice with a blocked line: the contract's
-- disputes are per invoice.
CREATE VIEW disputes AS
SELECT
    CAST(l.id AS text) AS dispute_id,
    CAST(l.move_id AS text) AS invoice_id,
    -- The line's last change: when the flag was set, unless the line changed since (a
    -- reconciliation); Odoo's chatter has the exact time.
    l.write_date AS opened_at,
    CAST(NULL AS timestamp) AS resolved_at,
    CAST(NULL AS text) AS outcome
FROM account_move_line AS l
JOIN account_move AS m ON m.id = l.move_id
WHERE l.display_type = 'payment_term'
  AND l.blocked
  AND m.move_type = 'out_invoice'
  AND m.state IN ('posted', 'cancel');

-- Instalment agreements made after the invoice: Odoo has no such record (payment terms on the
-- invoice are invoice_instalments, not an agreement). A shop that agrees plans keeps them in a
-- custom model or a helpdesk ticket and maps that here; until then the view has no rows.
CREATE VIEW installment_plans AS
SELECT
    CAST(NULL AS text) AS plan_id,
    CAST(NULL AS text) AS invoice_id,
    CAST(NULL AS timestamp) AS agreed_at,
    CAST(NULL AS text) AS status
WHERE FALSE;

-- Holds by support: core Odoo has none. account_credit_control adds res_partner.manual_followup
-- and payment_next_action_date (a promise to pay); a shop that uses them maps a hold here
-- (customer_id = partner, held_until = payment_next_action_date). The DDL this pack is tested
-- on does not carry those columns, so the view has no rows.
CREATE VIEW holds AS
SELECT
    CAST(NULL AS text) AS hold_id,
    CAST(NULL AS text) AS invoice_id,
    CAST(NULL AS text) AS customer_id,
    CAST(NULL AS text) AS reason,
    CAST(NULL AS text) AS set_by,
    CAST(NULL AS timestamp) AS set_at,
    CAST(NULL AS timestamp) AS expires_at,
    CAST(NULL AS date) AS held_until
WHERE FALSE;

-- Protective flags: partner tags named 'insolvency', 'deceased' or 'hardship' (header, 3). A
-- tag is in force while it is on the partner (cleared_at NULL); removing it lifts the flag. An
-- archived tag still counts: archiving hides a tag, it does not lift what it protects.
CREATE VIEW customer_flags AS
SELECT
    CAST(rel.partner_id AS text) AS customer_id,
    cat.name ->> 'en_US' AS flag,
    -- Odoo keeps no date for a tag: the partner's last change is the best stored value (the
    -- tagging changes the partner's write_date), and its creation where that is missing.
    COALESCE(p.write_date, p.create_date) AS set_at,
    CAST(NULL AS timestamp) AS cleared_at
FROM res_partner_res_partner_category_rel AS rel
JOIN res_partner_category AS cat ON cat.id = rel.category_id
JOIN res_partner AS p ON p.id = rel.partner_id
WHERE cat.name ->> 'en_US' IN ('insolvency', 'deceased', 'hardship');

-- Consents: OCA privacy_consent records for the two activities named 'contact_email' and
-- 'contact_phone' (header, 2); one record per partner and activity (a unique constraint), its
-- last change being the consent in force.
CREATE VIEW consents AS
SELECT
    CAST(pc.partner_id AS text) AS customer_id,
    pa.name ->> 'en_US' AS purpose,
    -- Granted only when the partner answered and accepted, and the record is not archived: a
    -- 'draft' or 'sent' record is a question nobody answered yet.
    (COALESCE(pc.accepted, FALSE) AND pc.state = 'answered' AND COALESCE(pc.active, FALSE))
        AS granted,
    COALESCE(pc.write_date, pc.create_date) AS recorded_at,
    CAST('odoo_privacy_consent' AS text) AS source
FROM privacy_consent AS pc
JOIN privacy_activity AS pa ON pa.id = pc.activity_id
WHERE pa.name ->> 'en_US' IN ('contact_email', 'contact_phone');

-- Unallocated money: posted receivable lines of plain entries (customer payments and bank
-- statement lines are move_type 'entry') with an open credit: money received and not (fully)
-- reconciled with an invoice. Invoices and credit notes are left out: an unreconciled credit
-- note is no money received.
CREATE VIEW unallocated_payments AS
SELECT
    CAST(l.id AS text) AS payment_id,
    CAST(l.partner_id AS text) AS customer_id,
    -- What is still unallocated (amount_residual, negative on a credit), in the company
    -- currency.
    CAST(ROUND(-l.amount_residual * 100) AS bigint) AS amount_cents,
    l.date AS received_at,
    CAST(NULL AS timestamp) AS allocated_at
FROM account_move_line AS l
JOIN account_move AS m ON m.id = l.move_id
JOIN account_account AS a ON a.id = l.account_id
WHERE a.account_type = 'asset_receivable'
  AND m.state = 'posted'
  AND m.move_type = 'entry'
  AND NOT COALESCE(l.reconciled, FALSE)
  AND l.amount_residual < 0
  AND l.partner_id IS NOT NULL;
