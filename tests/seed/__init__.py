"""The user's seed guide, kept verbatim, and a reader that runs its Python examples as written."""
