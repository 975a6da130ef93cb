"""Cryptography: keys, SSHSIG signatures, the age envelope and its header check."""
