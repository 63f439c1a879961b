"""Query functions shared by the JSON API and the HTML pages; each returns a schema object."""
