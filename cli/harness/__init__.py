"""The harness: starts the API and workers as subprocesses on free ports, isolates them and feeds them, for the tests, the benchmarks and `chat4all demo`."""
