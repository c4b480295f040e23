"""`chat4all demo`: a narrated live demonstration of the platform's stateful stream processing on the local stack."""
