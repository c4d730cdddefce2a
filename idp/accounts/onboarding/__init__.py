"""The pages that bring people in: activating an account created by staff or import (``/activate``)
and visitors' self-registration (``/register``). The use cases live beside this package, in
``idp.accounts.activation`` and ``idp.accounts.registration``."""
