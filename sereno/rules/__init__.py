"""The rules file: its format, conditions and summaries, loaded and checked."""
