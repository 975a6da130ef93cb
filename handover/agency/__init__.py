"""Agencies: registering one in the shop's configuration (`registry`), and the agency's own
tool that opens drops (`opener`, reading a local or SFTP inbox through `inbox`)."""
