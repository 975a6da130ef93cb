"""Return files (agency → shop): what an agency reports about the cases the shop handed over.

`contract` is the agency_return_v1 contract in code (the rows, the signed manifest, the names of
the files), shared by the agency's builder (`handover.agency.returns`) and the shop's side:
`ingest` fetches an agency's return files over SFTP, `opener` checks and decrypts one, and the
ledger (`handover.ledger.store`) records their events once. `export` writes the payments the
agencies reported for the shop's accounting.
"""
