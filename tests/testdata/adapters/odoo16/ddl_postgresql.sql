-- Odoo 16 (+ OCA 16.0) tables for the handover Odoo view pack: PostgreSQL DDL as the ORM creates it.
--
-- Sources (every table below names its file, class and line):
--   Odoo 16.0 core (addons base, mail, portal, analytic, account):
--     github.com/AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720, a copy of the
--     Odoo 16.0 nightly build "16.0+e-20240621" (its odoo/release.py); community addons live under
--     odoo/addons/. The upstream odoo/odoo repository (19 GB) could not be fetched here and the search
--     index holds only its master/17.0 files, so no odoo/odoo 16.0 commit hash can be named.
--     Cross-check: Martel-IT/odoo-16-core @ ea87592d6998e54961d9bcec58f9fa210771cffe (nightly
--     16.0-20230301) gives the same tables and columns; its one difference, account_move.invoice_user_id
--     declared compute+store=True instead of default=current user, changes no column (int4 either way),
--     and jleon2058/Proyectoodoo16 @ c5c6136488f03284dcb9486ca3161a35211a3fc6 (nightly 16.0-20230709)
--     agrees with the copy used here.
--   OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a (branch 16.0),
--     module account_credit_control 16.0.2.0.0.
--   OCA/data-protection @ 66603f5e8275138fe2fa18d0590606f4787b7915 (branch 16.0),
--     modules privacy 16.0.1.0.0 and privacy_consent 16.0.1.0.1.
--
-- Odoo has no SQL DDL files: the ORM creates each table from the Python model. This file
-- reproduces what Odoo 16's ORM creates on a fresh install (odoo/models.py _auto_init,
-- odoo/tools/sql.py create_model_table, odoo/fields.py column_type):
--   * a column for every STORED field: plain fields, and compute/related fields only with store=True;
--     One2many/Many2many never (Many2many tables are not reproduced); company_dependent fields never
--     (Odoo 16 keeps them in ir_property); Binary/Image with attachment=True (the default) never.
--   * types: Char -> varchar (varchar(n) with size=n), Char/Text/Html with translate -> jsonb
--     ({"en_US": ...}), Text/Html -> text, Selection -> varchar, Integer -> int4, Many2one -> int4,
--     Float -> numeric when digits= is given, else float8, Monetary -> numeric, Boolean -> bool,
--     Date -> date, Datetime -> timestamp without time zone (UTC), Json -> jsonb.
--   * required=True -> NOT NULL; magic columns id, create_uid, create_date, write_uid, write_date.
--   * columns in the order a fresh _auto_init creates them: sorted by SQL_ORDER_BY_TYPE (int4,
--     varchar, date, jsonb, text, numeric, bool, timestamp, float8), then by field definition order.
--   * Many2one foreign keys only as comments ("-> table(id) ON DELETE ..."), as asked; the model's
--     _sql_constraints are real CONSTRAINTs (Odoo names them <table>_<key>); indexes are left out.
--   * per table: the stored fields of the defining addon (and its extensions inside that addon), plus
--     those of the mixins its class _inherit-s (mail.thread -> message_main_attachment_id, portal.mixin
--     -> access_token, sequence.mixin -> sequence_prefix/sequence_number, analytic.mixin ->
--     analytic_distribution). Columns other addons add are NOT in the CREATE TABLE; each table lists them
--     in "SKIPPED" comments (those from addons `account` depends on are present in every real database
--     with invoicing, e.g. res_partner.customer_rank). PROVENANCE.md has the full list.
-- Derived by a static scan (Python ast) of the model classes, checked by hand against the sources.
--
-- Checked: loads into PostgreSQL 15 (throwaway cluster, psql -v ON_ERROR_STOP=1).

-- res_currency  (extra: currency_id targets; res_currency.name is the ISO 4217 code)  -- Odoo model 'res.currency', defined in addon 'base'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/base/models/res_currency.py (class Currency, line 22)
CREATE TABLE res_currency (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    decimal_places int4,                     -- Integer; compute _compute_decimal_places, store=True
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    name varchar(3) NOT NULL,                -- Char
    full_name varchar,                       -- Char
    symbol varchar NOT NULL,                 -- Char
    position varchar,                        -- Selection; values: 'after', 'before'
    currency_unit_label varchar,             -- Char
    currency_subunit_label varchar,          -- Char
    rounding numeric,                        -- Float; digits=(12, 6)
    active bool,                             -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'unique_name'
    CONSTRAINT res_currency_unique_name unique (name),
    -- from the model's _sql_constraints 'rounding_gt_zero'
    CONSTRAINT res_currency_rounding_gt_zero CHECK (rounding>0)
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): l10n_ar(1), l10n_cl(2)
);

-- res_country  (requested)  -- Odoo model 'res.country', defined in addon 'base'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/base/models/res_country.py (class Country, line 32)
CREATE TABLE res_country (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    address_view_id int4,                    -- Many2one; -> ir_ui_view(id) ON DELETE set null
    currency_id int4,                        -- Many2one; -> res_currency(id) ON DELETE set null
    phone_code int4,                         -- Integer
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    code varchar(2),                         -- Char
    name_position varchar,                   -- Selection; values: 'before', 'after'
    name jsonb NOT NULL,                     -- Char; translate=True -> jsonb {lang: text}
    vat_label jsonb,                         -- Char; translate=True -> jsonb {lang: text}
    address_format text,                     -- Text
    state_required bool,                     -- Boolean
    zip_required bool,                       -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'name_uniq'
    CONSTRAINT res_country_name_uniq unique (name),
    -- from the model's _sql_constraints 'code_uniq'
    CONSTRAINT res_country_code_uniq unique (code)
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): base_address_extended(1), l10n_ar(4), l10n_cl(3)
);

-- res_partner  (requested)  -- Odoo model 'res.partner', defined in addon 'base'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/base/models/res_partner.py (class Partner, line 172)
-- _inherit mixins (their stored columns included): format.address.mixin (odoo16:odoo/addons/base/models/res_partner.py), image.mixin (odoo16:odoo/addons/base/models/image_mixin.py), avatar.mixin (odoo16:odoo/addons/base/models/avatar_mixin.py)
CREATE TABLE res_partner (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    title int4,                              -- Many2one; -> res_partner_title(id) ON DELETE set null
    parent_id int4,                          -- Many2one; -> res_partner(id) ON DELETE set null
    user_id int4,                            -- Many2one; compute _compute_user_id, store=True; -> res_users(id) ON DELETE set null
    state_id int4,                           -- Many2one; -> res_country_state(id) ON DELETE restrict
    country_id int4,                         -- Many2one; -> res_country(id) ON DELETE restrict
    industry_id int4,                        -- Many2one; -> res_partner_industry(id) ON DELETE set null
    company_id int4,                         -- Many2one; -> res_company(id) ON DELETE set null
    color int4,                              -- Integer
    commercial_partner_id int4,              -- Many2one; compute _compute_commercial_partner, store=True; -> res_partner(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    name varchar,                            -- Char
    display_name varchar,                    -- Char; compute _compute_display_name, store=True
    ref varchar,                             -- Char
    lang varchar,                            -- Selection; selection=_lang_get
    tz varchar,                              -- Selection; selection=_tz_get
    vat varchar,                             -- Char
    company_registry varchar,                -- Char; compute _compute_company_registry, store=True
    website varchar,                         -- Char
    function varchar,                        -- Char
    type varchar,                            -- Selection; values: 'contact', 'invoice', 'delivery', 'private', 'other'
    street varchar,                          -- Char
    street2 varchar,                         -- Char
    zip varchar,                             -- Char
    city varchar,                            -- Char
    email varchar,                           -- Char
    phone varchar,                           -- Char
    mobile varchar,                          -- Char
    commercial_company_name varchar,         -- Char; compute _compute_commercial_company_name, store=True
    company_name varchar,                    -- Char
    date date,                               -- Date
    comment text,                            -- Html
    partner_latitude numeric,                -- Float; digits=(10, 7)
    partner_longitude numeric,               -- Float; digits=(10, 7)
    active bool,                             -- Boolean
    employee bool,                           -- Boolean
    is_company bool,                         -- Boolean
    partner_share bool,                      -- Boolean; compute _compute_partner_share, store=True
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'check_name'
    CONSTRAINT res_partner_check_name CHECK( (type='contact' AND name IS NOT NULL) or (type!='contact') )
    -- SKIPPED, added by other addons that `account` depends on (present in every DB with invoicing):
    --   debit_limit numeric (Monetary, addon account: odoo/addons/account/models/partner.py)
    --   last_time_entries_checked timestamp (Datetime, addon account: odoo/addons/account/models/partner.py)
    --   invoice_warn varchar (Selection, addon account: odoo/addons/account/models/partner.py)
    --   invoice_warn_msg text (Text, addon account: odoo/addons/account/models/partner.py)
    --   supplier_rank int4 (Integer, addon account: odoo/addons/account/models/partner.py)
    --   customer_rank int4 (Integer, addon account: odoo/addons/account/models/partner.py)
    --   signup_type varchar (Char, addon auth_signup: odoo/addons/auth_signup/models/res_partner.py)
    --   signup_expiration timestamp (Datetime, addon auth_signup: odoo/addons/auth_signup/models/res_partner.py)
    --   addon mail _inherit-s mail.activity.mixin+mail.thread.blacklist, which adds: message_main_attachment_id int4, email_normalized varchar, message_bounce int4
    -- SKIPPED, added by other OCA modules (not the defining one):
    --   credit_policy_id int4 (Many2one, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   payment_responsible_id int4 (Many2one, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   payment_note text (Text, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   payment_next_action_type int4 (Many2one, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   payment_next_action text (Text, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   payment_next_action_date date (Date, addon account_credit_control: account_credit_control/models/res_partner.py)
    --   manual_followup bool (Boolean, addon account_credit_control: account_credit_control/models/res_partner.py)
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): account_financial_risk(15), account_payment_return_financial_risk(2), base_address_extended(4), base_geolocalize(1), calendar(1), crm(1), fleet(2), l10n_ar(3), l10n_br(4), l10n_ca(1), l10n_cl(2), l10n_eg_edi_eta(1), l10n_fr(1), l10n_id_efaktur(5), l10n_in(1), l10n_in_tcs_tds(1), l10n_it_edi(3), l10n_ke_edi_tremol(1), l10n_latam_base(1), l10n_lu_peppol_id(1), l10n_nl(2), l10n_no(1), l10n_pe(1), l10n_ph(4), l10n_pl_jpk(1), l10n_ro(1), l10n_sa_edi(4), l10n_se(2), l10n_sg(1), membership(7), partner_autocomplete(2), partner_risk_insurance(9), purchase(2), sale(2), sale_financial_risk(2), sale_financial_risk_info(1), sale_payment_sheet_financial_risk(2), sales_team(1), sms(1), stock(2), website(1), website_crm_partner_assign(9), website_partner(3)
    -- NO COLUMN (company_dependent=True, value kept in ir_property in Odoo 16): credit_limit [account], property_account_payable_id [account], property_account_receivable_id [account], property_account_position_id [account], property_payment_term_id [account], property_supplier_payment_term_id [account], trust [account], barcode [base]; more in optional addons: account_check_printing, account_invoice_overdue_reminder, delivery, mrp_subcontracting, purchase, stock
);

-- account_account  (extra: needed because account_type (receivable/payable) lives here, not on account_move_line)  -- Odoo model 'account.account', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_account.py (class AccountAccount, line 12)
-- _inherit mixins (their stored columns included): mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py)
CREATE TABLE account_account (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    currency_id int4,                        -- Many2one; -> res_currency(id) ON DELETE set null
    company_id int4 NOT NULL,                -- Many2one; -> res_company(id) ON DELETE restrict
    group_id int4,                           -- Many2one; compute _compute_account_group, store=True; -> account_group(id) ON DELETE set null
    root_id int4,                            -- Many2one; compute _compute_account_root, store=True; -> account_root(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    name varchar NOT NULL,                   -- Char
    code varchar(64) NOT NULL,               -- Char
    account_type varchar NOT NULL,           -- Selection; compute _compute_account_type, store=True; values: 'asset_receivable', 'asset_cash', 'asset_current', 'asset_non_current', 'asset_prepayments', 'asset_fixed', 'liability_payable', 'liability_credit_card', 'liability_current', 'liability_non_current', 'equity', 'equity_unaffected', 'income', 'income_other', 'expense', 'expense_depreciation', 'expense_direct_cost', 'off_balance'
    internal_group varchar,                  -- Selection; compute _compute_internal_group, store=True; values: 'equity', 'asset', 'liability', 'income', 'expense', 'off_balance'
    note text,                               -- Text
    deprecated bool,                         -- Boolean
    include_initial_balance bool,            -- Boolean; compute _compute_include_initial_balance, store=True
    reconcile bool,                          -- Boolean; compute _compute_reconcile, store=True
    is_off_balance bool,                     -- Boolean; compute _compute_is_off_balance, store=True
    non_trade bool,                          -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'code_company_uniq'
    CONSTRAINT account_account_code_company_uniq unique (code,company_id)
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): l10n_multilang(1)
);

-- account_payment_term  (requested)  -- Odoo model 'account.payment.term', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_payment_term.py (class AccountPaymentTerm, line 10)
CREATE TABLE account_payment_term (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    company_id int4,                         -- Many2one; -> res_company(id) ON DELETE set null
    sequence int4 NOT NULL,                  -- Integer
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    name jsonb NOT NULL,                     -- Char; translate=True -> jsonb {lang: text}
    note jsonb,                              -- Html; translate=True -> jsonb {lang: text}
    active bool,                             -- Boolean
    display_on_invoice bool,                 -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- account_payment_term_line  (requested)  -- Odoo model 'account.payment.term.line', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_payment_term.py (class AccountPaymentTermLine, line 202)
CREATE TABLE account_payment_term_line (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    months int4 NOT NULL,                    -- Integer
    days int4 NOT NULL,                      -- Integer
    days_after int4,                         -- Integer
    discount_days int4,                      -- Integer
    payment_id int4 NOT NULL,                -- Many2one; -> account_payment_term(id) ON DELETE cascade
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    value varchar NOT NULL,                  -- Selection; values: 'balance', 'percent', 'fixed'
    value_amount numeric,                    -- Float; digits='Payment Terms'
    end_month bool,                          -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    discount_percentage float8               -- Float
);

-- account_move  (requested)  -- Odoo model 'account.move', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_move.py (class AccountMove, line 58)
-- same-addon extensions merged: odoo/addons/account/models/account_bank_statement_line.py, odoo/addons/account/models/account_payment.py
-- _inherit mixins (their stored columns included): portal.mixin (odoo16:odoo/addons/portal/models/portal_mixin.py), mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py), mail.activity.mixin (odoo16:odoo/addons/mail/models/mail_activity_mixin.py), sequence.mixin (odoo16:odoo/addons/account/models/sequence_mixin.py)
CREATE TABLE account_move (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    sequence_number int4,                    -- Integer; compute _compute_split_sequence, store=True; from sequence.mixin
    journal_id int4 NOT NULL,                -- Many2one; compute _compute_journal_id, store=True; -> account_journal(id) ON DELETE restrict
    company_id int4,                         -- Many2one; compute _compute_company_id, store=True; -> res_company(id) ON DELETE set null
    payment_id int4,                         -- Many2one; -> account_payment(id) ON DELETE set null
    statement_line_id int4,                  -- Many2one; -> account_bank_statement_line(id) ON DELETE set null
    tax_cash_basis_rec_id int4,              -- Many2one; -> account_partial_reconcile(id) ON DELETE set null
    tax_cash_basis_origin_move_id int4,      -- Many2one; -> account_move(id) ON DELETE set null
    auto_post_origin_id int4,                -- Many2one; -> account_move(id) ON DELETE set null
    secure_sequence_number int4,             -- Integer
    invoice_payment_term_id int4,            -- Many2one; compute _compute_invoice_payment_term_id, store=True; -> account_payment_term(id) ON DELETE set null
    partner_id int4,                         -- Many2one; -> res_partner(id) ON DELETE restrict
    commercial_partner_id int4,              -- Many2one; compute _compute_commercial_partner_id, store=True; -> res_partner(id) ON DELETE restrict
    partner_shipping_id int4,                -- Many2one; compute _compute_partner_shipping_id, store=True; -> res_partner(id) ON DELETE set null
    partner_bank_id int4,                    -- Many2one; compute _compute_partner_bank_id, store=True; -> res_partner_bank(id) ON DELETE set null
    fiscal_position_id int4,                 -- Many2one; compute _compute_fiscal_position_id, store=True; -> account_fiscal_position(id) ON DELETE restrict
    currency_id int4 NOT NULL,               -- Many2one; compute _compute_currency_id, store=True; -> res_currency(id) ON DELETE restrict
    reversed_entry_id int4,                  -- Many2one; -> account_move(id) ON DELETE set null
    invoice_user_id int4,                    -- Many2one; -> res_users(id) ON DELETE set null
    invoice_incoterm_id int4,                -- Many2one; -> account_incoterms(id) ON DELETE set null
    invoice_cash_rounding_id int4,           -- Many2one; -> account_cash_rounding(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    access_token varchar,                    -- Char; from portal.mixin
    sequence_prefix varchar,                 -- Char; compute _compute_split_sequence, store=True; from sequence.mixin
    name varchar,                            -- Char; compute _compute_name, store=True
    ref varchar,                             -- Char
    state varchar NOT NULL,                  -- Selection; values: 'draft', 'posted', 'cancel'
    move_type varchar NOT NULL,              -- Selection; values: 'entry', 'out_invoice', 'out_refund', 'in_invoice', 'in_refund', 'out_receipt', 'in_receipt'
    auto_post varchar NOT NULL,              -- Selection; values: 'no', 'at_date', 'monthly', 'quarterly', 'yearly'
    inalterable_hash varchar,                -- Char
    payment_reference varchar,               -- Char; compute _compute_payment_reference, store=True
    qr_code_method varchar,                  -- Selection; selection=lambda self: self.env['res.partner.bank'].get_available_qr_methods_in_sequence()
    payment_state varchar,                   -- Selection; compute _compute_payment_state, store=True; values: 'not_paid', 'in_payment', 'paid', 'partial', 'reversed', 'invoicing_legacy'
    invoice_source_email varchar,            -- Char
    invoice_partner_display_name varchar,    -- Char; compute _compute_invoice_partner_display_info, store=True
    invoice_origin varchar,                  -- Char
    date date NOT NULL,                      -- Date; compute _compute_date, store=True
    auto_post_until date,                    -- Date; compute _compute_auto_post_until, store=True
    invoice_date date,                       -- Date
    invoice_date_due date,                   -- Date; compute _compute_invoice_date_due, store=True
    narration text,                          -- Html; compute _compute_narration, store=True
    amount_untaxed numeric,                  -- Monetary; compute _compute_amount, store=True; currency_field=currency_id
    amount_tax numeric,                      -- Monetary; compute _compute_amount, store=True; currency_field=currency_id
    amount_total numeric,                    -- Monetary; compute _compute_amount, store=True; currency_field=currency_id
    amount_residual numeric,                 -- Monetary; compute _compute_amount, store=True; currency_field=currency_id
    amount_untaxed_signed numeric,           -- Monetary; compute _compute_amount, store=True; currency_field=company_currency_id
    amount_tax_signed numeric,               -- Monetary; compute _compute_amount, store=True; currency_field=company_currency_id
    amount_total_signed numeric,             -- Monetary; compute _compute_amount, store=True; currency_field=company_currency_id
    amount_total_in_currency_signed numeric, -- Monetary; compute _compute_amount, store=True; currency_field=currency_id
    amount_residual_signed numeric,          -- Monetary; compute _compute_amount, store=True; currency_field=company_currency_id
    quick_edit_total_amount numeric,         -- Monetary; currency_field=currency_id
    is_storno bool,                          -- Boolean; compute _compute_is_storno, store=True
    always_tax_exigible bool,                -- Boolean; compute _compute_always_tax_exigible, store=True
    to_check bool,                           -- Boolean
    posted_before bool,                      -- Boolean
    is_move_sent bool,                       -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
    -- SKIPPED, added by other OCA modules (not the defining one):
    --   credit_policy_id int4 (Many2one, addon account_credit_control: account_credit_control/models/account_move.py)
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): account_check_printing(1), account_debit_note(1), account_edi(1), account_invoice_overdue_reminder(3), l10n_ar(4), l10n_ch(2), l10n_cn(1), l10n_ec(1), l10n_eg_edi_eta(5), l10n_es_edi_sii(2), l10n_es_edi_tbai(2), l10n_fr_facturx_chorus_pro(3), l10n_gcc_invoice(1), l10n_id_efaktur(4), l10n_in(7), l10n_in_edi(2), l10n_in_edi_ewaybill(8), l10n_it_edi(4), l10n_it_edi_pa(5), l10n_ke_edi_tremol(4), l10n_latam_invoice_document(1), l10n_pl_jpk(4), l10n_pl_sale_stock(1), l10n_rs(1), l10n_sa(2), l10n_sa_edi(3), l10n_sg(2), partner_risk_insurance(3), sale(5), stock_account(1), website_sale(1)
);

-- account_move_line  (requested)  -- Odoo model 'account.move.line', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_move_line.py (class AccountMoveLine, line 16)
-- _inherit mixins (their stored columns included): analytic.mixin (odoo16:odoo/addons/analytic/models/analytic_mixin.py)
CREATE TABLE account_move_line (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    move_id int4 NOT NULL,                   -- Many2one; -> account_move(id) ON DELETE cascade
    journal_id int4,                         -- Many2one; related move_id.journal_id, store=True; -> account_journal(id) ON DELETE set null
    company_id int4,                         -- Many2one; related move_id.company_id, store=True; -> res_company(id) ON DELETE set null
    company_currency_id int4,                -- Many2one; related move_id.company_currency_id, store=True; -> res_currency(id) ON DELETE set null
    sequence int4,                           -- Integer; compute _compute_sequence, store=True
    account_id int4,                         -- Many2one; compute _compute_account_id, store=True; -> account_account(id) ON DELETE cascade
    currency_id int4 NOT NULL,               -- Many2one; compute _compute_currency_id, store=True; -> res_currency(id) ON DELETE restrict
    partner_id int4,                         -- Many2one; compute _compute_partner_id, store=True; -> res_partner(id) ON DELETE restrict
    reconcile_model_id int4,                 -- Many2one; -> account_reconcile_model(id) ON DELETE set null
    payment_id int4,                         -- Many2one; related move_id.payment_id, store=True; -> account_payment(id) ON DELETE set null
    statement_line_id int4,                  -- Many2one; related move_id.statement_line_id, store=True; -> account_bank_statement_line(id) ON DELETE set null
    statement_id int4,                       -- Many2one; related statement_line_id.statement_id, store=True; -> account_bank_statement(id) ON DELETE set null
    group_tax_id int4,                       -- Many2one; -> account_tax(id) ON DELETE set null
    tax_line_id int4,                        -- Many2one; related tax_repartition_line_id.tax_id, store=True; -> account_tax(id) ON DELETE restrict
    tax_group_id int4,                       -- Many2one; related tax_line_id.tax_group_id, store=True; -> account_tax_group(id) ON DELETE set null
    tax_repartition_line_id int4,            -- Many2one; -> account_tax_repartition_line(id) ON DELETE restrict
    full_reconcile_id int4,                  -- Many2one; -> account_full_reconcile(id) ON DELETE set null
    account_root_id int4,                    -- Many2one; related account_id.root_id, store=True; -> account_root(id) ON DELETE set null
    product_id int4,                         -- Many2one; -> product_product(id) ON DELETE restrict
    product_uom_id int4,                     -- Many2one; compute _compute_product_uom_id, store=True; -> uom_uom(id) ON DELETE restrict
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    move_name varchar,                       -- Char; related move_id.name, store=True
    parent_state varchar,                    -- Selection; related move_id.state, store=True
    ref varchar,                             -- Char; related move_id.ref, store=True
    name varchar,                            -- Char; compute _compute_name, store=True
    tax_audit varchar,                       -- Char; compute _compute_tax_audit, store=True
    matching_number varchar,                 -- Char; compute _compute_matching_number, store=True
    display_type varchar NOT NULL,           -- Selection; compute _compute_display_type, store=True; values: 'product', 'cogs', 'tax', 'rounding', 'payment_term', 'line_section', 'line_note', 'epd'
    date date,                               -- Date; related move_id.date, store=True
    date_maturity date,                      -- Date
    discount_date date,                      -- Date
    analytic_distribution jsonb,             -- Json; compute _compute_analytic_distribution, store=True; from analytic.mixin
    debit numeric,                           -- Monetary; compute _compute_debit_credit, store=True; currency_field=company_currency_id
    credit numeric,                          -- Monetary; compute _compute_debit_credit, store=True; currency_field=company_currency_id
    balance numeric,                         -- Monetary; compute _compute_balance, store=True; currency_field=company_currency_id
    amount_currency numeric,                 -- Monetary; compute _compute_amount_currency, store=True; currency_field=currency_id
    tax_base_amount numeric,                 -- Monetary; currency_field=company_currency_id
    amount_residual numeric,                 -- Monetary; compute _compute_amount_residual, store=True; currency_field=company_currency_id
    amount_residual_currency numeric,        -- Monetary; compute _compute_amount_residual, store=True; currency_field=currency_id
    quantity numeric,                        -- Float; compute _compute_quantity, store=True; digits='Product Unit of Measure'
    price_unit numeric,                      -- Float; compute _compute_price_unit, store=True; digits='Product Price'
    price_subtotal numeric,                  -- Monetary; compute _compute_totals, store=True; currency_field=currency_id
    price_total numeric,                     -- Monetary; compute _compute_totals, store=True; currency_field=currency_id
    discount numeric,                        -- Float; digits='Discount'
    discount_amount_currency numeric,        -- Monetary; currency_field=currency_id
    discount_balance numeric,                -- Monetary; currency_field=company_currency_id
    tax_tag_invert bool,                     -- Boolean; compute _compute_tax_tag_invert, store=True
    reconciled bool,                         -- Boolean; compute _compute_amount_residual, store=True
    blocked bool,                            -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    discount_percentage float8,              -- Float
    -- from the model's _sql_constraints 'check_credit_debit'
    CONSTRAINT account_move_line_check_credit_debit CHECK(display_type IN ('line_section', 'line_note') OR credit * debit=0),
    -- from the model's _sql_constraints 'check_amount_currency_balance_sign'
    CONSTRAINT account_move_line_check_amount_currency_balance_sign CHECK( display_type IN ('line_section', 'line_note') OR ( (balance <= 0 AND amount_currency <= 0) OR (balance >= 0 AND amount_currency >= 0) ) ),
    -- from the model's _sql_constraints 'check_accountable_required_fields'
    CONSTRAINT account_move_line_check_accountable_required_fields CHECK(display_type IN ('line_section', 'line_note') OR account_id IS NOT NULL),
    -- from the model's _sql_constraints 'check_non_accountable_fields_null'
    CONSTRAINT account_move_line_check_non_accountable_fields_null CHECK(display_type NOT IN ('line_section', 'line_note') OR (amount_currency = 0 AND debit = 0 AND credit = 0 AND account_id IS NULL))
    -- SKIPPED, columns added by optional addons (Odoo community or other OCA modules; names in PROVENANCE.md): account_fleet(1), hr_expense(1), l10n_latam_invoice_document(1), l10n_pe(1), purchase(1), sale(1), stock_landed_costs(1)
);

-- account_partial_reconcile  (requested)  -- Odoo model 'account.partial.reconcile', defined in addon 'account'
-- source: AddisonReyes-SEMS/odoo16 @ ee8e2301da6bb1c6b1f10d5232f1556a9e280720 : odoo/addons/account/models/account_partial_reconcile.py (class AccountPartialReconcile, line 9)
CREATE TABLE account_partial_reconcile (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    debit_move_id int4 NOT NULL,             -- Many2one; -> account_move_line(id) ON DELETE restrict
    credit_move_id int4 NOT NULL,            -- Many2one; -> account_move_line(id) ON DELETE restrict
    full_reconcile_id int4,                  -- Many2one; -> account_full_reconcile(id) ON DELETE set null
    exchange_move_id int4,                   -- Many2one; -> account_move(id) ON DELETE set null
    debit_currency_id int4,                  -- Many2one; related debit_move_id.currency_id, store=True; -> res_currency(id) ON DELETE set null
    credit_currency_id int4,                 -- Many2one; related credit_move_id.currency_id, store=True; -> res_currency(id) ON DELETE set null
    company_id int4,                         -- Many2one; related debit_move_id.company_id, store=True; -> res_company(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    max_date date,                           -- Date; compute _compute_max_date, store=True
    amount numeric,                          -- Monetary; currency_field=company_currency_id
    debit_amount_currency numeric,           -- Monetary; currency_field=debit_currency_id
    credit_amount_currency numeric,          -- Monetary; currency_field=credit_currency_id
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- credit_control_policy  (extra: referenced by credit_control_policy_level.policy_id / credit_control_line.policy_id)  -- Odoo model 'credit.control.policy', defined in addon 'account_credit_control'
-- source: OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a : account_credit_control/models/credit_control_policy.py (class CreditControlPolicy, line 11)
CREATE TABLE credit_control_policy (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    company_id int4,                         -- Many2one; -> res_company(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    name varchar NOT NULL,                   -- Char
    do_nothing bool,                         -- Boolean
    active bool,                             -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- credit_control_policy_level  (requested)  -- Odoo model 'credit.control.policy.level', defined in addon 'account_credit_control'
-- source: OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a : account_credit_control/models/credit_control_policy.py (class CreditControlPolicyLevel, line 250)
CREATE TABLE credit_control_policy_level (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    policy_id int4 NOT NULL,                 -- Many2one; -> credit_control_policy(id) ON DELETE cascade
    level int4 NOT NULL,                     -- Integer
    delay_days int4 NOT NULL,                -- Integer
    email_template_id int4 NOT NULL,         -- Many2one; -> mail_template(id) ON DELETE restrict
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    computation_mode varchar NOT NULL,       -- Selection; values: 'net_days', 'end_of_month', 'previous_date'
    channel varchar NOT NULL,                -- Selection; values: 'letter', 'email', 'phone'
    name jsonb NOT NULL,                     -- Char; translate=True -> jsonb {lang: text}
    custom_text jsonb NOT NULL,              -- Text; translate=True -> jsonb {lang: text}
    custom_mail_text jsonb NOT NULL,         -- Html; translate=True -> jsonb {lang: text}
    custom_text_after_details jsonb,         -- Text; translate=True -> jsonb {lang: text}
    mail_show_invoice_detail bool,           -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'unique_level'
    CONSTRAINT credit_control_policy_level_unique_level UNIQUE (policy_id, level)
    -- SKIPPED, added by other OCA modules (not the defining one):
    --   dunning_product_id int4 (Many2one, addon account_credit_control_dunning_fees: account_credit_control_dunning_fees/model/policy.py)
    --   dunning_fixed_amount float8 (Float, addon account_credit_control_dunning_fees: account_credit_control_dunning_fees/model/policy.py)
    --   dunning_currency_id int4 (Many2one, addon account_credit_control_dunning_fees: account_credit_control_dunning_fees/model/policy.py)
    --   dunning_fees_type varchar (Selection, addon account_credit_control_dunning_fees: account_credit_control_dunning_fees/model/policy.py)
);

-- credit_control_run  (requested)  -- Odoo model 'credit.control.run', defined in addon 'account_credit_control'
-- source: OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a : account_credit_control/models/credit_control_run.py (class CreditControlRun, line 10)
CREATE TABLE credit_control_run (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    company_id int4,                         -- Many2one; -> res_company(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    state varchar NOT NULL,                  -- Selection; values: 'draft', 'done'
    date date NOT NULL,                      -- Date
    report text,                             -- Html
    hide_change_state_button bool,           -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- credit_control_communication  (extra: referenced by credit_control_line.communication_id)  -- Odoo model 'credit.control.communication', defined in addon 'account_credit_control'
-- source: OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a : account_credit_control/models/credit_control_communication.py (class CreditControlCommunication, line 11)
-- _inherit mixins (their stored columns included): mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py), mail.activity.mixin (odoo16:odoo/addons/mail/models/mail_activity_mixin.py)
CREATE TABLE credit_control_communication (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    partner_id int4 NOT NULL,                -- Many2one; -> res_partner(id) ON DELETE restrict
    policy_id int4,                          -- Many2one; related policy_level_id.policy_id, store=True; -> credit_control_policy(id) ON DELETE set null
    policy_level_id int4 NOT NULL,           -- Many2one; -> credit_control_policy_level(id) ON DELETE restrict
    currency_id int4 NOT NULL,               -- Many2one; -> res_currency(id) ON DELETE restrict
    contact_address_id int4,                 -- Many2one; -> res_partner(id) ON DELETE set null
    company_id int4 NOT NULL,                -- Many2one; -> res_company(id) ON DELETE restrict
    user_id int4,                            -- Many2one; -> res_users(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    report_date date,                        -- Date
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- credit_control_line  (requested)  -- Odoo model 'credit.control.line', defined in addon 'account_credit_control'
-- source: OCA/credit-control @ 18c22a8c8db0d07df9bc01a93fd21f9357c3484a : account_credit_control/models/credit_control_line.py (class CreditControlLine, line 12)
-- _inherit mixins (their stored columns included): mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py), mail.activity.mixin (odoo16:odoo/addons/mail/models/mail_activity_mixin.py)
CREATE TABLE credit_control_line (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    invoice_id int4,                         -- Many2one; -> account_move(id) ON DELETE set null
    partner_id int4 NOT NULL,                -- Many2one; -> res_partner(id) ON DELETE restrict
    commercial_partner_id int4,              -- Many2one; related partner_id.commercial_partner_id, store=True; -> res_partner(id) ON DELETE set null
    communication_id int4,                   -- Many2one; -> credit_control_communication(id) ON DELETE set null
    move_line_id int4 NOT NULL,              -- Many2one; -> account_move_line(id) ON DELETE restrict
    account_id int4,                         -- Many2one; related move_line_id.account_id, store=True; -> account_account(id) ON DELETE set null
    currency_id int4,                        -- Many2one; related move_line_id.currency_id, store=True; -> res_currency(id) ON DELETE set null
    company_id int4,                         -- Many2one; related move_line_id.company_id, store=True; -> res_company(id) ON DELETE set null
    policy_level_id int4 NOT NULL,           -- Many2one; -> credit_control_policy_level(id) ON DELETE restrict
    policy_id int4,                          -- Many2one; related policy_level_id.policy_id, store=True; -> credit_control_policy(id) ON DELETE set null
    level int4,                              -- Integer; related policy_level_id.level, store=True
    run_id int4,                             -- Many2one; -> credit_control_run(id) ON DELETE set null
    partner_user_id int4,                    -- Many2one; compute _compute_partner_user_id, store=True; -> res_users(id) ON DELETE set null
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    state varchar NOT NULL,                  -- Selection; values: 'draft', 'ignored', 'queued', 'to_be_sent', 'sent', 'error', 'email_error'
    channel varchar NOT NULL,                -- Selection; values: 'letter', 'email', 'phone'
    date date NOT NULL,                      -- Date
    date_due date NOT NULL,                  -- Date
    date_entry date,                         -- Date; related move_line_id.date, store=True
    date_sent date,                          -- Date
    manually_overridden bool,                -- Boolean
    manual_followup bool,                    -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    amount_due float8 NOT NULL,              -- Float
    balance_due float8 NOT NULL              -- Float
    -- SKIPPED, added by other OCA modules (not the defining one):
    --   dunning_fees_amount float8 (Float, addon account_credit_control_dunning_fees: account_credit_control_dunning_fees/model/line.py)
);

-- privacy_activity  (requested)  -- Odoo model 'privacy.activity', defined in addon 'privacy'
-- source: OCA/data-protection @ 66603f5e8275138fe2fa18d0590606f4787b7915 : privacy/models/privacy_activity.py (class PrivacyActivity, line 7)
-- same-addon extensions merged: privacy_consent/models/privacy_activity.py
-- columns of addon 'privacy_consent' (same OCA repo, the module the brief names) merged in
-- _inherit mixins (their stored columns included): mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py), mail.activity.mixin (odoo16:odoo/addons/mail/models/mail_activity_mixin.py)
CREATE TABLE privacy_activity (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    controller_id int4 NOT NULL,             -- Many2one; -> res_partner(id) ON DELETE restrict
    server_action_id int4,                   -- Many2one; -> ir_act_server(id) ON DELETE set null; from privacy.activity [privacy_consent]
    consent_template_id int4,                -- Many2one; -> mail_template(id) ON DELETE set null; from privacy.activity [privacy_consent]
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    subject_domain varchar,                  -- Char
    consent_required varchar,                -- Selection; values: 'auto', 'manual'; from privacy.activity [privacy_consent]
    name jsonb NOT NULL,                     -- Char; translate=True -> jsonb {lang: text}
    description jsonb,                       -- Html; translate=True -> jsonb {lang: text}
    active bool,                             -- Boolean
    subject_find bool,                       -- Boolean
    default_consent bool,                    -- Boolean; from privacy.activity [privacy_consent]
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone   -- Datetime (magic column)
);

-- privacy_consent  (requested)  -- Odoo model 'privacy.consent', defined in addon 'privacy_consent'
-- source: OCA/data-protection @ 66603f5e8275138fe2fa18d0590606f4787b7915 : privacy_consent/models/privacy_consent.py (class PrivacyConsent, line 10)
-- _inherit mixins (their stored columns included): mail.thread (odoo16:odoo/addons/mail/models/mail_thread.py)
CREATE TABLE privacy_consent (
    id serial PRIMARY KEY,                   -- Id (magic column; the ORM creates "id SERIAL NOT NULL ... PRIMARY KEY(id)")
    message_main_attachment_id int4,         -- Many2one; -> ir_attachment(id) ON DELETE set null; from mail.thread
    partner_id int4 NOT NULL,                -- Many2one; -> res_partner(id) ON DELETE restrict
    activity_id int4 NOT NULL,               -- Many2one; -> privacy_activity(id) ON DELETE restrict
    create_uid int4,                         -- Many2one -> res_users(id) ON DELETE set null (magic column)
    write_uid int4,                          -- Many2one -> res_users(id) ON DELETE set null (magic column)
    state varchar NOT NULL,                  -- Selection; values: 'draft', 'sent', 'answered'
    last_metadata text,                      -- Text
    active bool,                             -- Boolean
    accepted bool,                           -- Boolean
    create_date timestamp without time zone, -- Datetime (magic column)
    write_date timestamp without time zone,  -- Datetime (magic column)
    -- from the model's _sql_constraints 'unique_partner_activity'
    CONSTRAINT privacy_consent_unique_partner_activity UNIQUE(partner_id, activity_id)
);
