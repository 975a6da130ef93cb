"""What may leave: the allow-list, pseudonyms, phone numbers, CSV injection."""
