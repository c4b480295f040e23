"""Chat4All core: settings, logging, clock, topic names, shared clients and protobuf code; imports no product package."""
