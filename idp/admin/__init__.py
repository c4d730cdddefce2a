"""Administration: what staff do, across services. ``permissions`` is the table of operations and
the staff roles that allow them; ``console`` the staff console's use cases and the command line's
operator check; ``keys`` key revocation with its consequences; ``views`` the console (``/admin``)."""
