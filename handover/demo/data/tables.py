"""The final tables: ids, the DDL's column order, and rows sorted as a shop would store them."""

from __future__ import annotations

import numpy as np

from handover.demo.data.books import Books
from handover.demo.data.columns import Table, ids, nullable, take, with_ids, zfill
from handover.demo.data.consents import consents
from handover.demo.data.notes import notes
from handover.demo.data.orders import Orders
from handover.demo.data.people import People
from handover.demo.data.scenarios import STATUS


def assemble(
    rng: np.random.Generator, orders: Orders, books: Books, people: People
) -> dict[str, Table]:
    """Every table in the DDL's column order, with ids, sorted as a shop would store it.

    Customer ids count up by account creation, invoice ids by invoice date.
    """
    customer_order = np.argsort(people.created_at, kind="stable")
    customer_id = np.empty(orders.n, dtype=object)
    customer_id[customer_order] = ids("C", 6, orders.n)
    invoice_order = np.argsort(orders.issued, kind="stable")
    invoice_id = np.empty(orders.N, dtype=object)
    invoice_id[invoice_order] = ids("I", 7, orders.N)
    # Built in this order: invoices, payments, consents and notes draw from `rng`.
    return {
        "customers": _customers(orders, people, customer_id, customer_order),
        "customer_flags": _customer_flags(books.flags.build(), customer_id),
        "invoices": _invoices(rng, orders, invoice_order, invoice_id, customer_id),
        "invoice_lines": _invoice_lines(orders.lines, invoice_order, invoice_id),
        "payments": _payments(rng, books.payments.build(), orders, people, invoice_id),
        "dunning_events": _dunning_events(books.events.build(), invoice_id),
        "disputes": _disputes(books.disputes.build(), invoice_id),
        "installment_plans": _installment_plans(books.plans.build(), invoice_id),
        "consents": consents(rng, people.created_at, customer_id, orders.T),
        "support_notes": notes(rng, people, customer_id, orders.T),
        "holds": _holds(books.holds.build(), invoice_id, customer_id),
    }


def _customers(
    orders: Orders, people: People, customer_id: np.ndarray, customer_order: np.ndarray
) -> Table:
    p = people.person
    return take(
        {
            "customer_id": customer_id,
            "kind": np.where(orders.business, "business", "consumer").astype(object),
            "first_name": p["first"],
            "last_name": p["last"],
            "company_name": p["company"],
            "date_of_birth": people.dob,
            "email": p["email"],
            "phone": p["phone"],
            "street": p["street"],
            "postal_code": p["postal"],
            "city": p["city"],
            "country": orders.country,
            "language": people.language,
            "created_at": people.created_at,
        },
        customer_order,
    )


def _customer_flags(flags: Table, customer_id: np.ndarray) -> Table:
    return take(
        {
            "customer_id": customer_id[flags["customer"]],
            "flag": flags["flag"],
            "set_at": flags["set_at"],
            "cleared_at": flags["cleared_at"],
        },
        np.argsort(flags["set_at"], kind="stable"),
    )


def _invoices(
    rng: np.random.Generator,
    orders: Orders,
    invoice_order: np.ndarray,
    invoice_id: np.ndarray,
    customer_id: np.ndarray,
) -> Table:
    N, o = orders.N, invoice_order
    # Invoice numbers count per year of the invoice date; some orders never got invoiced.
    year = orders.issued[o].astype("datetime64[Y]").astype(np.int64) + 1970
    number = np.arange(N) - np.searchsorted(year, year, side="left") + 1
    order_no = np.cumsum(1 + (rng.random(N) < 0.04))
    number_text = zfill(number, 6)
    return {
        "invoice_id": invoice_id[o],
        "invoice_number": np.strings.add(
            np.strings.add("RE-", year.astype(str)), np.strings.add("-", number_text)
        ),
        "customer_id": customer_id[orders.inv_cust[o]],
        "order_id": ids("O", 7, int(order_no[-1]) if N else 0)[order_no - 1],
        "order_date": orders.order[o],
        "issued_at": orders.issued[o],
        "due_date": orders.due[o],
        "amount_cents": orders.amount[o],
        "currency": orders.currency[o],
        "status": STATUS[orders.cls[o]],
    }


def _invoice_lines(lines: Table, invoice_order: np.ndarray, invoice_id: np.ndarray) -> Table:
    rank = np.empty(len(invoice_order), dtype=np.int64)
    rank[invoice_order] = np.arange(len(invoice_order))
    return take(
        {
            "invoice_id": invoice_id[lines["invoice"]],
            "line_no": lines["line_no"],
            "sku": lines["sku"],
            "description": lines["description"],
            "quantity": lines["quantity"],
            "unit_price_cents": lines["unit_price"],
        },
        np.lexsort((lines["line_no"], rank[lines["invoice"]])),
    )


def _payments(
    rng: np.random.Generator, pay: Table, orders: Orders, people: People, invoice_id: np.ndarray
) -> Table:
    # The payer's IBAN is known for direct debits and for most bank transfers.
    with_iban = (pay["method"] == "sepa_debit") | (
        (pay["method"] == "invoice_transfer") & (rng.random(len(pay["method"])) < 0.7)
    )
    payer_iban = people.iban[orders.inv_cust[pay["invoice"]]]
    return with_ids(
        "payment_id",
        "P",
        7,
        {
            "invoice_id": invoice_id[pay["invoice"]],
            "paid_at": pay["paid_at"],
            "amount_cents": pay["amount"],
            "method": pay["method"],
            "iban": np.where(with_iban, payer_iban, None),
        },
        "paid_at",
    )


def _dunning_events(ev: Table, invoice_id: np.ndarray) -> Table:
    return with_ids(
        "event_id",
        "E",
        7,
        {
            "invoice_id": invoice_id[ev["invoice"]],
            "kind": ev["kind"],
            "sent_at": ev["sent_at"],
            "channel": ev["channel"],
            "fee_cents": ev["fee"],
            "announces_handover": ev["announces"],
        },
        "sent_at",
    )


def _disputes(disputes: Table, invoice_id: np.ndarray) -> Table:
    return with_ids(
        "dispute_id",
        "D",
        6,
        {
            "invoice_id": invoice_id[disputes["invoice"]],
            "opened_at": disputes["opened_at"],
            "resolved_at": disputes["resolved_at"],
            "outcome": disputes["outcome"],
        },
        "opened_at",
    )


def _installment_plans(plans: Table, invoice_id: np.ndarray) -> Table:
    return with_ids(
        "plan_id",
        "IP",
        6,
        {
            "invoice_id": invoice_id[plans["invoice"]],
            "agreed_at": plans["agreed_at"],
            "status": plans["status"],
        },
        "agreed_at",
    )


def _holds(holds: Table, invoice_id: np.ndarray, customer_id: np.ndarray) -> Table:
    return with_ids(
        "hold_id",
        "H",
        6,
        {
            "invoice_id": nullable(invoice_id, holds["invoice"]),
            "customer_id": nullable(customer_id, holds["customer"]),
            "reason": holds["reason"],
            "set_by": holds["set_by"],
            "set_at": holds["set_at"],
            "expires_at": holds["expires_at"],
        },
        "set_at",
    )
