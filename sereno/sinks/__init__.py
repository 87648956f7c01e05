"""Where alerts go on the console and in the alerts log."""
