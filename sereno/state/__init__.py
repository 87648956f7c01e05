"""`sereno serve`'s state on disk: the SQLite store of snapshots, journal, history and outbox."""
