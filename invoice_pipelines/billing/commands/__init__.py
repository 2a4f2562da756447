"""The billing area's commands: their parsers (`cli.py`) and what they do (`run.py` and the
other modules here), each loaded only when its command runs (area.py names them)."""
