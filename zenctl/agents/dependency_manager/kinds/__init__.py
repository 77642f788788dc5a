"""The Dependency Management agent's action kinds: Python upgrades by update type with their restore
(`upgrade`), and Debian package upgrades with theirs (`apt`)."""
