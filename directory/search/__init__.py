"""Full-text search over the directory, behind a small backend interface."""
