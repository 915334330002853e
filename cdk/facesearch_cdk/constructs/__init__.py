"""One construct per concern; `stack.py` wires them together."""
