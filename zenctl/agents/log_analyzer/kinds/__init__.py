"""Log Analysis's action kinds: security.block_ip and its undo, security.unblock_ip."""
