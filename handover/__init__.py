"""handover: hand overdue receivables to a debt-collection agency, lawfully and provably."""

__version__ = "0.1.0"
