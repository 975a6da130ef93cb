"""A seeded WooCommerce HPOS shop in SQLite, mapped by `schemas/adapters/woocommerce_hpos.sql`.

`build(path)` creates the real HPOS tables (tests/testdata/adapters/woocommerce_hpos/
ddl_sqlite.sql) and the view pack, fills them with about a hundred orders of registered and
guest customers in DE and AT (paid, refunded in part, cancelled, unpaid on account with
reminders and Mahnungen, businesses, flags, consents, disputes, holds), and returns what it put
in: per order the WooCommerce facts, per customer key the shop's own records. A test computes
what handover must hand over from these facts alone, without the views or handover's rules.

Everything is relative to AS_OF and drawn from one seeded `random.Random`, so a build is the
same every time.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support.paths import PROJECT

AS_OF = dt.date(2026, 11, 16)
BERLIN = ZoneInfo("Europe/Berlin")
SEED = 20261116
PACK = PROJECT / "schemas" / "adapters" / "woocommerce_hpos.sql"
HPOS_DDL = PROJECT / "tests" / "testdata" / "adapters" / "woocommerce_hpos" / "ddl_sqlite.sql"
# The gateways of purchase on account the pack lists; the others are paid at checkout.
ON_ACCOUNT = "invoice"
GERMAN_MARKET = "german_market_purchase_on_account"
CARD = ("stripe", "ppcp-gateway")  # Stripe, PayPal Payments

# fmt: off
FIRST_NAMES = ("Anna", "Lukas", "Sophie", "Jonas", "Marie", "Felix", "Lea", "Paul", "Jürgen",
               "Katharina", "Stefan", "Elif")
LAST_NAMES = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
              "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder",
              "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofer", "Gruber", "Huber",
              "Pichler", "Steiner", "Moser", "Leitner")
STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schulstraße", "Am Markt",
           "Bergstraße", "Kirchgasse", "Mühlenweg", "Rosenstraße")
# fmt: on
CITIES = {
    "DE": "10115 Berlin,20095 Hamburg,80331 München,50667 Köln,04109 Leipzig,70173 Stuttgart",
    "AT": "1010 Wien,8010 Graz,5020 Salzburg,6020 Innsbruck,4020 Linz",
    "CH": "8001 Zürich",
}


@dataclass(frozen=True)
class Address:
    """A billing (or shipping) address as WooCommerce keeps it; '' for an empty field."""

    first_name: str
    last_name: str
    company: str
    address_1: str
    address_2: str
    postcode: str
    city: str
    country: str
    email: str
    phone: str


@dataclass(frozen=True)
class Letter:
    """A reminder or Mahnung that left the shop (a row of handover_dunning)."""

    kind: str  # 'reminder', 'dunning' or 'final_notice'
    sent_at: dt.datetime  # UTC
    fee_cents: int | None
    announces: bool
    channel: str = "letter"


@dataclass(frozen=True)
class Dispute:
    opened_at: dt.datetime
    resolved_at: dt.datetime | None = None
    outcome: str | None = None


@dataclass
class Order:
    """One shop_order and what hangs on it: refunds, payment, letters, disputes, holds."""

    user_id: int  # WordPress user id; 0 = guest
    status: str
    payment_method: str
    created_gmt: dt.datetime
    total_cents: int
    billing: Address
    intent: str  # what the generator meant: 'eligible', a reason code, or 'no case'
    currency: str = "EUR"
    refunds: list[tuple[dt.datetime, int]] = field(default_factory=list)  # (when, cents > 0)
    paid_gmt: dt.datetime | None = None
    letters: list[Letter] = field(default_factory=list)
    disputes: list[Dispute] = field(default_factory=list)
    holds: list[dt.date | None] = field(default_factory=list)  # held_until; None = open-ended
    order_number: str | None = None  # '_order_number' meta, where the shop has it
    shipping: Address | None = None
    order_id: int = 0  # assigned when the shop is written


@dataclass
class Person:
    """A registered user (user_id > 0, any number of orders) or a guest (one order)."""

    user_id: int
    address: Address
    orders: list[Order] = field(default_factory=list)
    flags: list[tuple[str, dt.datetime, dt.datetime | None]] = field(default_factory=list)
    consents: list[tuple[str, bool, dt.datetime, str]] = field(default_factory=list)
    holds: list[dt.date | None] = field(default_factory=list)  # on the customer

    @property
    def key(self) -> str:
        """The pack's customer key: 'user:<id>', or 'order:<id>' of a guest's one order."""
        return f"user:{self.user_id}" if self.user_id else f"order:{self.orders[0].order_id}"


@dataclass
class ShopFacts:
    """What `build` put in: every order (with its id) and every person's own records."""

    path: Path
    orders: list[Order]
    people: dict[str, Person]  # by key


def day(days_before: int) -> dt.date:
    """AS_OF minus `days_before` days."""
    return AS_OF - dt.timedelta(days=days_before)


def at(date: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(hour, minute, second))


class _Maker:
    """Draws people, orders and letters from one seeded generator."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.people: list[Person] = []
        self.next_user = 101

    def address(self, country: str = "DE", *, company: str = "") -> Address:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        postcode, city = rng.choice(CITIES[country].split(",")).split(" ", 1)
        domain = {"DE": "example.de", "AT": "example.at", "CH": "example.ch"}[country]
        local = f"{first}.{last}".lower()
        for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ë", "e")):
            local = local.replace(a, b)
        phone = {"DE": "0151 ", "AT": "+43 660 ", "CH": "+41 79 "}[country]
        return Address(
            first_name=first,
            last_name=last,
            company=company,
            address_1=f"{rng.choice(STREETS)} {rng.randint(1, 140)}",
            address_2=rng.choice(("", "", "", "2. OG", "Hinterhaus")),
            postcode=postcode,
            city=city,
            country=country,
            email=f"{local}{rng.randint(1, 99)}@{domain}",
            phone=phone + "".join(str(rng.randint(0, 9)) for _ in range(7)),
        )

    def person(self, country: str = "DE", *, guest: bool = False, company: str = "") -> Person:
        user_id = 0 if guest else self.next_user
        self.next_user += 0 if guest else self.rng.randint(1, 4)
        person = Person(user_id, self.address(country, company=company))
        self.people.append(person)
        return person

    def order(
        self,
        person: Person,
        created: dt.datetime,
        *,
        intent: str,
        status: str = "wc-on-hold",
        method: str = ON_ACCOUNT,
        cents: int | None = None,
        billing: Address | None = None,
    ) -> Order:
        if person.user_id == 0 and person.orders:
            raise ValueError("a guest is a debtor per order: make a new guest")
        total = cents if cents is not None else self.rng.randint(1990, 48900)
        order = Order(
            user_id=person.user_id,
            status=status,
            payment_method=method,
            created_gmt=created,
            total_cents=total,
            billing=billing or person.address,
            intent=intent,
        )
        if self.rng.random() < 0.25:  # some ship elsewhere: the billing address still counts
            order.shipping = self.address(order.billing.country)
        person.orders.append(order)
        return order

    def created(self, days_before: int, *, hour: int | None = None) -> dt.datetime:
        """An order time `days_before` AS_OF, in the day or at `hour` (UTC)."""
        if hour is None:
            hour = self.rng.randint(6, 19)
        return at(day(days_before), hour, self.rng.randint(5, 55), self.rng.randint(0, 59))

    def sent(self, date: dt.date) -> dt.datetime:
        """When a letter left on `date`: a varying time of the working day (UTC)."""
        return at(date, self.rng.randint(7, 15), self.rng.randint(0, 59), self.rng.randint(0, 59))

    def dun(
        self,
        order: Order,
        *,
        reminder: int,
        notice: int | None,
        final: int | None = None,
        notice_announces: bool = True,
    ) -> None:
        """Letters `reminder`/`notice`/`final` days after the order's due date (None = not sent)."""
        due = due_of(order)
        order.letters.append(
            Letter("reminder", self.sent(due + dt.timedelta(days=reminder)), None, False, "email")
        )
        if notice is not None:
            sent = self.sent(due + dt.timedelta(days=notice))
            order.letters.append(Letter("dunning", sent, 500, notice_announces))
        if final is not None:
            sent = self.sent(due + dt.timedelta(days=final))
            order.letters.append(Letter("final_notice", sent, 500, True))


def due_of(order: Order) -> dt.date:
    """The due date the pack gives: the order's Berlin day + 14 days (its PAYMENT TERM)."""
    local = order.created_gmt.replace(tzinfo=dt.UTC).astimezone(BERLIN)
    return local.date() + dt.timedelta(days=14)


def _scenarios(m: _Maker) -> None:
    """Every order of the shop, each with the outcome the generator means it to have."""
    rng = m.rng

    # Paid at checkout by card or PayPal, spread over the year; some refunded in part, one whole.
    regulars = [m.person(rng.choice(("DE", "DE", "AT"))) for _ in range(12)]
    for n in range(22):
        person = regulars[n % len(regulars)] if n % 3 else m.person("DE", guest=True)
        created = m.created(rng.randint(20, 330))
        order = m.order(
            person, created, intent="no case", status="wc-completed", method=rng.choice(CARD)
        )
        order.paid_gmt = created + dt.timedelta(minutes=2)
        if n % 7 == 3:
            order.refunds.append((created + dt.timedelta(days=9), rng.randint(500, 1500)))
        if n == 10:
            order.status = "wc-refunded"
            rest = order.total_cents - sum(cents for _, cents in order.refunds)
            order.refunds.append((created + dt.timedelta(days=12), rest))

    # Bought on account and paid (after a reminder, some), one refunded in part after payment.
    for n in range(10):
        person = regulars[n] if n < 6 else m.person("AT" if n % 2 else "DE", guest=True)
        created = m.created(rng.randint(40, 300))
        order = m.order(
            person,
            created,
            intent="no case",
            status="wc-completed",
            method=rng.choice((ON_ACCOUNT, GERMAN_MARKET)),
        )
        order.paid_gmt = at(due_of(order) + dt.timedelta(days=rng.randint(-5, 12)), 10, 30)
        if n % 4 == 1:
            m.dun(order, reminder=7, notice=None)
        if n == 5:
            order.refunds.append((order.paid_gmt + dt.timedelta(days=3), 1200))

    # Cancelled and failed orders, an order credited in full before it was paid (wc-refunded),
    # a card payment a gateway put on hold for a charge-back, an abandoned card checkout.
    for n in range(3):
        m.order(
            m.person(guest=True), m.created(60 + 20 * n), intent="no case", status="wc-cancelled"
        )
    for n in range(2):
        m.order(
            m.person(guest=True),
            m.created(45 + n),
            intent="no case",
            status="wc-failed",
            method=CARD[0],
        )
    credited = m.order(m.person(guest=True), m.created(90), intent="no case", status="wc-refunded")
    credited.refunds.append((credited.created_gmt + dt.timedelta(days=6), credited.total_cents))
    held_card = m.order(m.person(guest=True), m.created(100), intent="no case", method=CARD[0])
    held_card.paid_gmt = held_card.created_gmt + dt.timedelta(minutes=1)
    m.order(
        m.person(guest=True), m.created(120), intent="no case", status="wc-pending", method=CARD[1]
    )

    # On account and not yet due: due after AS_OF, or on AS_OF itself (a case only before it).
    for days_before in (3, 8, 12, 14):
        m.order(
            m.person(rng.choice(("DE", "AT")), guest=True), m.created(days_before), intent="no case"
        )

    # ---- cases: on account, unpaid, due before AS_OF ----------------------------------------
    def case(
        intent: str,
        person: Person | None = None,
        *,
        days_before: int | None = None,
        hour: int | None = None,
        country: str = "DE",
        **kw: object,
    ) -> Order:
        who = person or m.person(country, guest=rng.random() < 0.4)
        created = m.created(days_before or rng.randint(75, 160), hour=hour)
        return m.order(who, created, intent=intent, **kw)  # type: ignore[arg-type]

    def dunned(order: Order, *, final: bool | None = None) -> Order:
        m.dun(
            order,
            reminder=rng.randint(5, 9),
            notice=rng.randint(18, 24),
            final=rng.randint(32, 38) if final else None,
        )
        return order

    # Eligible: fully dunned, in DE and AT, consumers and businesses, guests and users.
    for n in range(8):
        dunned(
            case(
                "eligible",
                country="AT" if n % 3 == 1 else "DE",
                status="wc-pending" if n == 4 else "wc-on-hold",
                method=GERMAN_MARKET if n % 4 == 2 else ON_ACCOUNT,
            ),
            final=n % 2 == 0,
        )
    dunned(case("eligible", m.person("DE", company="Nordlicht Bürobedarf GmbH")), final=True)
    dunned(case("eligible", m.person("AT", company="Alpenglück Handels KG", guest=True)))
    # Ordered late in the UTC day: the Berlin day, and so the due date, is the next at 23:xx
    # UTC, and at 22:xx UTC in summer time only (2026-07-29, 2026-02-09).
    for days_before, hour in ((100, 23), (300, 23), (110, 22), (280, 22)):
        dunned(case("eligible", days_before=days_before, hour=hour))
    for credit in (2500, 4000):  # part returned, credited on the unpaid order: owes the rest
        order = dunned(case("eligible", cents=rng.randint(9000, 20000)))
        order.refunds.append((order.created_gmt + dt.timedelta(days=5), credit))
    # A regular customer whose latest order (paid later by card) moved them: the agency gets
    # the new address, not the one of the unpaid order.
    mover = m.person("DE")
    old = dunned(case("eligible", mover, days_before=130))
    moved = m.address("DE")
    moved = replace(moved, first_name=mover.address.first_name, last_name=mover.address.last_name)
    newer = m.order(
        mover, m.created(25), intent="no case", status="wc-completed", method=CARD[0], billing=moved
    )
    newer.paid_gmt = newer.created_gmt + dt.timedelta(minutes=3)
    # Their block-checkout draft since (another address) is no order and changes nothing.
    m.order(
        mover,
        m.created(2),
        intent="no case",
        status="wc-checkout-draft",
        method=CARD[0],
        billing=m.address("DE"),
    )
    assert old.billing != moved
    # Regulars with an unpaid order besides their paid ones.
    for person in regulars[:3]:
        dunned(case("eligible", person, country=person.address.country))
    # Facts that do not hold a case back: a dispute resolved for the shop, a flag lifted, a
    # hold that ended yesterday, a DE claim from 2023 (time-barred only after 2026).
    upheld = dunned(case("eligible"))
    opened = upheld.created_gmt + dt.timedelta(days=20)
    upheld.disputes.append(Dispute(opened, opened + dt.timedelta(days=9), "claim_upheld"))
    lifted = m.person("DE")
    dunned(case("eligible", lifted))
    lifted.flags.append(("hardship", at(day(200), 9), at(day(60), 9)))
    dunned(case("eligible")).holds.append(day(1))
    old_de = case("eligible", days_before=(AS_OF - dt.date(2023, 6, 2)).days)
    m.dun(old_de, reminder=10, notice=30, final=50)

    # Excluded, each for the reason named.
    for days_before in (35, 40, 42):  # due fewer than 30 days ago; reminded at most
        order = case("overdue_too_short", days_before=days_before)
        if days_before > 36:
            m.dun(order, reminder=7, notice=None)
    case("dunning_incomplete")  # never dunned
    case("dunning_incomplete", country="AT")
    m.dun(case("dunning_incomplete"), reminder=6, notice=None)  # reminded only
    m.dun(case("dunning_incomplete", country="AT"), reminder=9, notice=None)
    m.dun(case("dunning_incomplete"), reminder=7, notice=21, notice_announces=False)
    m.dun(case("dunning_incomplete"), reminder=7, notice=25, notice_announces=False)
    for days_ago in (5, 10, 13):  # announced fewer than 14 days before AS_OF
        order = case("dunning_incomplete")
        due = due_of(order)
        order.letters.append(Letter("reminder", m.sent(due + dt.timedelta(days=8)), None, False))
        order.letters.append(Letter("final_notice", m.sent(day(days_ago)), 500, True))
    # Announced 14 days before AS_OF by UTC, but the letter left at 23:40 UTC: in Berlin that
    # is 13 days before, too late.
    late_notice = case("dunning_incomplete")
    late_notice.letters.append(
        Letter("reminder", m.sent(due_of(late_notice) + dt.timedelta(days=6)), None, False)
    )
    late_notice.letters.append(Letter("dunning", at(day(14), 23, 40), 500, True))
    # The announcing Mahnung went out before the reminder: no notice after a reminder.
    backwards = case("dunning_incomplete")
    due = due_of(backwards)
    backwards.letters.append(Letter("dunning", m.sent(due + dt.timedelta(days=6)), 500, True))
    backwards.letters.append(Letter("reminder", m.sent(due + dt.timedelta(days=20)), None, False))
    # Reminded before the due date: a letter before the due date does not count.
    early = case("dunning_incomplete")
    due = due_of(early)
    early.letters.append(Letter("reminder", m.sent(due - dt.timedelta(days=3)), None, False))
    early.letters.append(Letter("dunning", m.sent(due + dt.timedelta(days=20)), 500, True))

    dunned(case("below_minimum", cents=890))
    small = dunned(case("below_minimum", cents=4900))
    small.refunds.append((small.created_gmt + dt.timedelta(days=4), 4200))

    disputed = dunned(case("disputed"))
    disputed.disputes.append(Dispute(at(day(30), 11)))
    withdrawn = dunned(case("disputed"))
    opened = at(day(40), 9)
    withdrawn.disputes.append(Dispute(opened, opened + dt.timedelta(days=5), "claim_withdrawn"))

    flagged = m.person("DE")  # a registered customer in hardship: both unpaid orders held
    dunned(case("protected_customer", flagged))
    dunned(case("protected_customer", flagged, days_before=95))
    flagged.flags.append(("hardship", at(day(50), 14), None))
    deceased = m.person("AT", guest=True)
    dunned(case("protected_customer", deceased, country="AT"))
    deceased.flags.append(("deceased", at(day(20), 8), None))

    dunned(case("on_hold")).holds.append(day(-10))
    dunned(case("on_hold")).holds.append(AS_OF)  # the last day held is AS_OF itself
    promised = m.person("DE")
    dunned(case("on_hold", promised))
    promised.holds.append(None)

    old_at = case("time_barred", m.person("AT"), days_before=(AS_OF - dt.date(2023, 9, 1)).days)
    m.dun(old_at, reminder=10, notice=30, final=50)
    old_de_barred = case("time_barred", days_before=(AS_OF - dt.date(2022, 5, 10)).days)
    m.dun(old_de_barred, reminder=10, notice=30, final=50)

    nameless = m.person("DE", guest=True)
    nameless.address = replace(nameless.address, last_name="")
    dunned(case("incomplete", nameless))
    streetless = m.person("AT", guest=True)
    streetless.address = replace(streetless.address, address_1="", address_2="")
    dunned(case("incomplete", streetless, country="AT"))

    dunned(case("not_served", m.person("CH", guest=True)))

    # Consents: granted at checkout for most, withdrawn by some, withdrawn and granted again.
    for n, person in enumerate(m.people):
        if not person.orders or n % 5 == 4:
            continue
        first = person.orders[0].created_gmt
        person.consents.append(("contact_email", True, first, "checkout"))
        if n % 5 == 1:
            person.consents.append(("contact_email", False, at(day(n % 40 + 5), 12), "account"))
        if n % 10 == 3:
            person.consents.append(("contact_email", False, at(day(70), 12), "letter"))
            person.consents.append(("contact_email", True, at(day(9), 12), "account"))
        if n % 3 == 0:
            person.consents.append(("contact_phone", True, first, "checkout"))


def build(path: Path) -> ShopFacts:
    """Write the shop to `path` (a new SQLite file) and return the facts it holds."""
    maker = _Maker()
    _scenarios(maker)
    people = [p for p in maker.people if p.orders]
    orders = sorted((o for p in people for o in p.orders), key=lambda o: o.created_gmt)
    # One id sequence for orders and refunds, as WooCommerce's placeholder posts give them;
    # sequential order numbers ('_order_number') from the plugin installed in July 2026.
    posts: list[tuple[dt.datetime, int, Order, int]] = [
        (o.created_gmt, 0, o, 0) for o in orders
    ] + [(when, 1, o, cents) for o in orders for when, cents in o.refunds]
    posts.sort(key=lambda p: (p[0], p[1]))
    db = sqlite3.connect(path)
    db.executescript(HPOS_DDL.read_text() + PACK.read_text())
    next_id, number = 3000, 0
    refund_ids: list[tuple[int, Order, dt.datetime, int]] = []
    for when, is_refund, order, cents in posts:
        next_id += maker.rng.randint(1, 3)
        if is_refund:
            refund_ids.append((next_id, order, when, cents))
            continue
        order.order_id = next_id
        if order.created_gmt >= dt.datetime(2026, 7, 1) and order.status != "wc-checkout-draft":
            number += 1
            order.order_number = f"B-{order.created_gmt.year}-{number:04d}"
    for order in orders:
        _write_order(db, order, maker.rng)
    for refund_id, order, when, cents in refund_ids:
        db.execute(
            "INSERT INTO wp_wc_orders (id, status, currency, type, tax_amount, total_amount, "
            "customer_id, billing_email, date_created_gmt, date_updated_gmt, parent_order_id) "
            "VALUES (?, 'wc-completed', ?, 'shop_order_refund', ?, ?, 0, NULL, ?, ?, ?)",
            (
                refund_id,
                order.currency,
                _money(-cents * 19 // 119),
                _money(-cents),
                _ts(when),
                _ts(when),
                order.order_id,
            ),
        )
    by_key = {p.key: p for p in people}
    _write_own_tables(db, orders, by_key)
    db.commit()
    db.close()
    return ShopFacts(path, orders, by_key)


def _money(cents: int) -> str:
    """decimal(26,8) as WooCommerce writes it, e.g. '119.90000000'."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}000000"


def _ts(when: dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else None


def _write_order(db: sqlite3.Connection, order: Order, rng: random.Random) -> None:
    rate = 20 if order.billing.country == "AT" else 19
    db.execute(
        "INSERT INTO wp_wc_orders (id, status, currency, type, tax_amount, total_amount, "
        "customer_id, billing_email, date_created_gmt, date_updated_gmt, parent_order_id, "
        "payment_method, payment_method_title, transaction_id, ip_address, user_agent, "
        "customer_note) VALUES (?, ?, ?, 'shop_order', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
        (
            order.order_id,
            order.status,
            order.currency,
            _money(order.total_cents * rate // (100 + rate)),
            _money(order.total_cents),
            order.user_id,
            order.billing.email or None,
            _ts(order.created_gmt),
            _ts(order.paid_gmt or order.created_gmt),
            order.payment_method,
            {"invoice": "Kauf auf Rechnung", GERMAN_MARKET: "Kauf auf Rechnung"}.get(
                order.payment_method, "Kreditkarte / PayPal"
            ),
            f"txn_{rng.getrandbits(40):010x}" if order.paid_gmt else "",
            f"192.0.2.{rng.randint(1, 254)}",
            "Mozilla/5.0 (X11; Linux x86_64)",
            "Bitte klingeln." if rng.random() < 0.1 else "",
        ),
    )
    for kind, address in (
        ("billing", order.billing),
        ("shipping", order.shipping or order.billing),
    ):
        db.execute(
            "INSERT INTO wp_wc_order_addresses (order_id, address_type, first_name, last_name, "
            "company, address_1, address_2, city, state, postcode, country, email, phone) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)",
            (
                order.order_id,
                kind,
                address.first_name,
                address.last_name,
                address.company,
                address.address_1,
                address.address_2,
                address.city,
                address.postcode,
                address.country,
                address.email if kind == "billing" else None,
                address.phone,
            ),
        )
    completed = order.paid_gmt + dt.timedelta(days=2) if order.paid_gmt else None
    db.execute(
        "INSERT INTO wp_wc_order_operational_data (order_id, created_via, woocommerce_version, "
        "prices_include_tax, coupon_usages_are_counted, download_permission_granted, cart_hash, "
        "new_order_email_sent, order_key, order_stock_reduced, date_paid_gmt, "
        "date_completed_gmt, shipping_tax_amount, shipping_total_amount, discount_tax_amount, "
        "discount_total_amount, recorded_sales) "
        "VALUES (?, 'checkout', '8.9.1', 1, 1, 1, ?, 1, ?, 1, ?, ?, '0.95000000', "
        "'4.95000000', '0.00000000', '0.00000000', 1)",
        (
            order.order_id,
            f"{rng.getrandbits(128):032x}",
            f"wc_order_{rng.getrandbits(48):012x}",
            _ts(order.paid_gmt),
            _ts(completed) if order.status == "wc-completed" else None,
        ),
    )
    meta = [
        ("_billing_address_index", f"{order.billing.first_name} {order.billing.city}"),
        ("is_vat_exempt", "no"),
    ]
    if order.order_number:
        meta.append(("_order_number", order.order_number))
    db.executemany(
        "INSERT INTO wp_wc_orders_meta (order_id, meta_key, meta_value) VALUES (?, ?, ?)",
        [(order.order_id, k, v) for k, v in meta],
    )


def _write_own_tables(
    db: sqlite3.Connection, orders: list[Order], by_key: dict[str, Person]
) -> None:
    """The rows of the pack's own tables: letters, disputes, holds, flags, consents."""
    letters = sorted(((x.sent_at, o, x) for o in orders for x in o.letters), key=lambda x: x[0])
    db.executemany(
        "INSERT INTO handover_dunning (event_id, order_id, kind, sent_at, channel, fee_cents, "
        "announces_handover) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (n, o.order_id, x.kind, _ts(x.sent_at), x.channel, x.fee_cents, int(x.announces))
            for n, (_, o, x) in enumerate(letters, start=1)
        ],
    )
    db.executemany(
        "INSERT INTO handover_disputes (order_id, opened_at, resolved_at, outcome) "
        "VALUES (?, ?, ?, ?)",
        [
            (o.order_id, _ts(d.opened_at), _ts(d.resolved_at), d.outcome)
            for o in orders
            for d in o.disputes
        ],
    )
    holds = [(o.order_id, None, held) for o in orders for held in o.holds]
    holds += [(None, key, held) for key, p in by_key.items() for held in p.holds]
    db.executemany(
        "INSERT INTO handover_holds (order_id, customer_key, set_at, held_until) "
        "VALUES (?, ?, ?, ?)",
        [
            (order_id, key, _ts(at(day(30), 10)), held.isoformat() if held else None)
            for order_id, key, held in holds
        ],
    )
    db.executemany(
        "INSERT INTO handover_customer_flags (customer_key, flag, set_at, cleared_at) "
        "VALUES (?, ?, ?, ?)",
        [
            (key, flag, _ts(set_at), _ts(cleared))
            for key, p in by_key.items()
            for flag, set_at, cleared in p.flags
        ],
    )
    db.executemany(
        "INSERT INTO handover_consents (customer_key, purpose, granted, recorded_at, source) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (key, purpose, int(granted), _ts(when), source)
            for key, p in by_key.items()
            for purpose, granted, when, source in p.consents
        ],
    )
