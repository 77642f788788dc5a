"""PEP 503 names. packaging.utils.canonicalize_name does the same, but importing packaging.utils loads
packaging.tags (sysconfig, the manylinux probes): tens of milliseconds a scan that never needs them."""

import re

_SEPARATORS = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()
