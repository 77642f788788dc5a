"""zenctl: autonomous, audited, dry-runnable background agents for one host."""

__version__ = "0.1.0"
