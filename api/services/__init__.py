"""The servicers of the API's core services (auth, users, conversations, messages)."""
