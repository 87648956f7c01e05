"""The command line: parsing arguments and wiring the stages, nothing more."""
