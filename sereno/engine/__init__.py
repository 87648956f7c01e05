"""The engine: windows, rule evaluation and the alert lifecycle, pure and given time."""
