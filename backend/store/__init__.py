"""The store: SQLAlchemy models of runs and estimates, and the code that loads them."""
