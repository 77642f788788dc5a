"""The Log Analysis agent: logs read incrementally through rotation, error patterns mined into templates (new
ones, top ones, spikes, tracebacks), performance bottlenecks (slow routes, slow SQL), security incidents counted
in jails as fail2ban does (with `security.block_ip` proposals), and errors other agents can act on."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(
    name="log_analyzer",
    title="Log Analysis",
    config="zenctl.agents.log_analyzer.config:LogAnalyzerConfig",
    agent="zenctl.agents.log_analyzer.agent:LogAnalyzerAgent",
    kinds={"security.block_ip": "zenctl.agents.log_analyzer.kinds.block_ip",
           "security.unblock_ip": "zenctl.agents.log_analyzer.kinds.block_ip"},
    modes=(("security.block_ip", "approve", "bans of addresses a jail caught (nftables set with a timeout)"),
           ("security.unblock_ip", "approve", "lifting such a ban (what `zenctl rollback` runs, as a person)")),
    cli="zenctl.agents.log_analyzer.cli:commands",
)
