"""Keystone's state for one virtual cloud (``store``) and the Fernet tokens any twin process holding
the same key repository can validate (``fernet``). State only: the wire format is in
``cloudtwin.services.keystone``, the role checks in ``cloudtwin.policy``."""
