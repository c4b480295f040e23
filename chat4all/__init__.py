"""Chat4All core: settings, CLI, local stack and shared clients."""
