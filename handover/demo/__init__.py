"""The demo: a generated shop, an embedded SFTP agency, one real handover."""
