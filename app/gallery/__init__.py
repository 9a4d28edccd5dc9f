"""Templates shipped with the hub: one JSON document each (the template export format), built from the built-in
components. They appear in every tenant's gallery; app/services/templates.py keeps them in the database."""
