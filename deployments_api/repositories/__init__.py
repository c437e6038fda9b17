"""All SQL lives here: one module per aggregate, each a class over a Session."""
