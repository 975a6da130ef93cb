"""Builds every table of the demo shop as numpy columns, one step after the other."""

from __future__ import annotations

import datetime as dt

import numpy as np

from handover.demo.data.books import Books
from handover.demo.data.cases import record_case_dunning, record_case_payments
from handover.demo.data.columns import Table
from handover.demo.data.history import record_history
from handover.demo.data.orders import Orders
from handover.demo.data.people import People
from handover.demo.data.pools import make_pools
from handover.demo.data.protections import record_customer_protections, record_invoice_protections
from handover.demo.data.tables import assemble


def build(customers: int, seed: int, today: dt.date, per_customer: float) -> dict[str, Table]:
    """Every table, in the DDL's column order, the same for the same arguments.

    All steps draw from one generator, in this order: moving, adding or dropping a draw anywhere
    changes every table after it. The working arrays are freed on return, before the load needs
    its memory.
    """
    rng = np.random.default_rng(seed)
    orders = Orders(rng, customers, today, per_customer)
    books = Books(rng, orders)
    record_history(books)
    record_case_payments(books)
    record_case_dunning(books)
    record_invoice_protections(books)
    record_customer_protections(books)
    people = People(rng, orders, make_pools(seed, customers))
    return assemble(rng, orders, books, people)
