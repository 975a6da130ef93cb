"""The ledger: state, audit log, consent log, retention; the only writer of its tables."""
