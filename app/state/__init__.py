"""States shared by several pages (the logged-in user). Page-specific states live with their page."""
