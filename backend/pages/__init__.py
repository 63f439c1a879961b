"""HTML pages; each renders the object that its JSON twin under /api returns."""
