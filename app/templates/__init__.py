"""The one page layout every logged-in page uses."""
