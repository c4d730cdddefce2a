"""Administration: use cases that span services (staff console and admin API come later)."""
