"""marshmallow 4 schemas: what the API accepts and what it answers."""
