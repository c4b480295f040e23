"""Unit tests of `chat4all demo`'s pure parts: the group's assignment, checkpoints, breaker trails."""
