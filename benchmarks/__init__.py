"""Side-by-side measurements of gameproto against the alternatives a user would pick instead."""
