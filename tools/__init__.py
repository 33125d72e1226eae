"""Course tooling that is not part of the helpers API: the static site (make site), the offline bundle
(make bundle), finding a Python (make test-pythons)."""
