"""`chat4all demo` end to end on the live stack."""
