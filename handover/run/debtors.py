"""Who owes: a customer, or the company a contact person belongs to.

A shop that bills contact persons of a business says so in `customers.parent_customer_id`
(optional): the legal entity the contact belongs to (Odoo: `commercial_partner_id`). The
company is then the debtor: the rules and the agency's row take its kind, name, address,
country and language; the contact stays as the contact person (first and last name, and the
e-mail address and phone number the contact consented to). Facts on the company (protective
flags, holds, unallocated money) hold back every case of its contacts, as facts on the contact
itself do. A contact of a company has no date of birth that matters (rule 8 is about natural
persons who owe), so none is read from it.
"""

from __future__ import annotations

import pandas as pd

PARENT = "parent_customer_id"
# What the company gives its contacts' cases: who owes and where the letter goes.
COMPANY_FIELDS = ("kind", "company_name", "street", "postal_code", "city", "country", "language")


def debtors(customers: pd.DataFrame) -> pd.DataFrame:
    """`customers` indexed by customer_id, each contact of a company with the company's fields
    and no date of birth, and a `debtor_id` column: the company's id, or the customer's own.

    A parent that is unknown, no business, or itself a contact is held back earlier, by the
    source suite (`invalid_company`); here such a contact keeps its own fields.
    """
    indexed = customers.set_index("customer_id")
    if PARENT not in indexed:
        return indexed.assign(debtor_id=indexed.index)
    parent = indexed.pop(PARENT)
    companies = indexed[indexed["kind"] == "business"]
    of_company = parent.notna() & parent.isin(companies.index)
    if not of_company.any():
        return indexed.assign(debtor_id=indexed.index)
    result = indexed.copy()
    company = companies.reindex(parent[of_company].to_numpy())
    for field in COMPANY_FIELDS:
        result.loc[of_company, field] = company[field].to_numpy()
    result.loc[of_company, "date_of_birth"] = pd.NaT
    result["debtor_id"] = parent.where(of_company, pd.Series(indexed.index, index=indexed.index))
    return result


def of_customers(cases: pd.DataFrame, customer_ids: pd.Index) -> pd.Series:
    """True for each case whose customer, or the company that owes for it, is in the ids."""
    hit = cases["customer_id"].isin(customer_ids)
    if "debtor_id" in cases:
        hit |= cases["debtor_id"].isin(customer_ids)
    return hit
