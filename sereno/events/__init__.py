"""Events: the schema agents send, reading it from files and HTTP bodies, its time, and
pushing it."""
