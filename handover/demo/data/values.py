"""The fixed values the demo shop draws from: countries and languages, e-mail domains, the
product catalogue, payment methods, protective flags, staff, hold reasons, note templates."""

from __future__ import annotations

import numpy as np

# country -> (Faker locale, share among customers without cases)
COUNTRIES: dict[str, tuple[str, float]] = {
    "DE": ("de_DE", 0.85),
    "AT": ("de_AT", 0.12),
    "CH": ("de_CH", 0.012),
    "NL": ("nl_NL", 0.006),
    "FR": ("fr_FR", 0.006),
    "IT": ("it_IT", 0.006),
}
LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "DE": (("de", "en", "tr"), (0.97, 0.02, 0.01)),
    "AT": (("de", "en"), (0.98, 0.02)),
    "CH": (("de", "fr"), (0.7, 0.3)),
    "NL": (("nl", "en"), (0.8, 0.2)),
    "FR": (("fr",), (1.0,)),
    "IT": (("it",), (1.0,)),
}
# Reserved domains (RFC 2606/6761): realistic-looking addresses that reach nobody.
EMAIL_DOMAINS = np.array(
    ["example.com", "example.net", "example.org", "mail.example", "post.example", "web.example"],
    dtype=object,
)

# (sku, description, unit price in cents). Some are health-related on purpose: a purchase
# history can reveal health data (CJEU C-21/23), which is why handover never reads the lines.
PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("GES-1001", "Blutdruckmessgerät Oberarm", 4999),
    ("GES-1002", "Schwangerschaftstest (2 Stück)", 899),
    ("GES-1003", "Inkontinenzeinlagen extra (30 Stück)", 1299),
    ("GES-1004", "Blutzucker-Teststreifen (50 Stück)", 2499),
    ("GES-1005", "Fieberthermometer digital", 999),
    ("GES-1006", "Kompressionsstrümpfe Klasse 2", 3990),
    ("GES-1007", "Nikotinpflaster 21 mg (7 Stück)", 2795),
    ("GES-1008", "Hörgerätebatterien Größe 312 (60 Stück)", 1899),
    ("GES-1009", "Pulsoximeter", 2999),
    ("GES-1010", "Kondome sensitiv (12 Stück)", 995),
    ("GES-1011", "Läusekamm mit Lupe", 695),
    ("GES-1012", "Rollator Leichtgewicht", 12900),
    ("HAU-2001", "Bettwäsche Satin 135×200 cm", 4995),
    ("HAU-2002", "Spülmaschinentabs (60 Stück)", 1199),
    ("HAU-2003", "Staubsaugerbeutel (10 Stück)", 999),
    ("HAU-2004", "Handtuch-Set Frottee", 2999),
    ("HAU-2005", "LED-Leuchtmittel E27 (4er-Pack)", 1299),
    ("HAU-2006", "Schreibtischlampe", 3499),
    ("ELE-3001", "USB-C-Ladekabel 2 m", 1299),
    ("ELE-3002", "Bluetooth-Kopfhörer", 5999),
    ("ELE-3003", "Druckerpatronen schwarz XL", 3499),
    ("ELE-3004", "Smartphone-Hülle", 1999),
    ("ELE-3005", "Akkuschrauber 18 V", 8999),
    ("MOD-4001", "Jeans Slim Fit", 6995),
    ("MOD-4002", "Winterjacke Herren", 14900),
    ("MOD-4003", "Laufshirt Damen", 2499),
    ("MOD-4004", "Wanderschuhe Gr. 43", 11990),
    ("LEB-5001", "Kaffeebohnen Espresso 1 kg", 1799),
    ("LEB-5002", "Grüner Tee Sencha 100 g", 799),
    ("LEB-5003", "Müsli Nuss & Früchte 750 g", 549),
    ("FRE-6001", "Yogamatte", 2999),
    ("FRE-6002", "Brettspiel »Die Siedler«", 3499),
    ("FRE-6003", "Kinderfahrradhelm", 3999),
    ("TIE-7001", "Katzenfutter nass (24 × 85 g)", 1799),
    ("GRA-0001", "Gratisprobe Handcreme", 0),  # last: only for the 0.00 invoices
)
SKU = np.array([p[0] for p in PRODUCTS], dtype=object)
DESCRIPTION = np.array([p[1] for p in PRODUCTS], dtype=object)
PRICE = np.array([p[2] for p in PRODUCTS], dtype=np.int64)
REGULAR = len(PRODUCTS) - 1
FREE_SAMPLE = REGULAR
CHEAP = np.flatnonzero((PRICE < 1000) & (PRICE > 0))
EXPENSIVE = np.flatnonzero(PRICE >= 1490)  # any case but rule 2's can keep 10.00 EUR open

METHODS = np.array(["sepa_debit", "card", "paypal", "invoice_transfer"], dtype=object)
METHOD_SHARES = (0.3, 0.2, 0.3, 0.2)
FLAGS = np.array(["deceased", "insolvency", "hardship"], dtype=object)
STAFF = np.array(["m.schulz", "a.yilmaz", "j.becker", "k.novak", "t.huber", "s.öztürk"], object)
HOLD_REASONS = np.array(
    [
        "Zahlung telefonisch zugesagt",
        "Reklamation in Bearbeitung",
        "Rücksendung unterwegs",
        "Ratenzahlung wird geprüft",
        "Brief kam zurück, Adresse wird geklärt",
        "Kulanzprüfung durch Teamleitung",
    ],
    dtype=object,
)
# Support notes: the personal and health data that must never reach an agency.
NOTE_TEMPLATES = (
    "Kunde ist im Krankenhaus, bittet um Zahlungsaufschub. Rückruf unter {phone}.",
    "Neue E-Mail-Adresse laut Telefonat: {email}",
    "Lastschrift zurückgegangen, neue IBAN {iban} notiert.",
    "Erstattung der Retoure bitte auf {iban_spaced} (Kontoinhaber {first} {last}).",
    "Kundin schwanger, bittet um diskreten Versand. Rückfragen an {email}.",
    "Diagnose Diabetes Typ 2, bestellt Teststreifen künftig monatlich.",
    "{last} nach Schlaganfall in Reha bis {day}, Angehörige erreichbar unter {phone}.",
    "Beschwerde über Mahngebühren per E-Mail von {email}, Kopie an Buchhaltung.",
    "Paket laut Zusteller abgegeben, {first} {last} bestreitet den Empfang.",
    "Kunde hat telefonisch Zahlung bis {day} zugesagt.",
    "Depression laut Betreuerin, Post bitte nur an {email}; Betreuerin Tel. {phone}.",
    "Inkontinenzeinlagen in falscher Größe, Umtausch veranlasst.",
    "Zahlung per Überweisung von IBAN {iban} angekündigt.",
    "Bitte keine Werbung mehr an {email} senden.",
)
