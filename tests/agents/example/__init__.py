"""A tiny agent, declared exactly as zenctl's own are (a `SPEC` in its package), that the tests run through the
installed zenctl: it makes sure a file holds a line, with an action kind of its own. README's "Creating an agent"
walks through it."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(
    name="example",
    title="Example",
    config="tests.agents.example.config:ExampleConfig",
    agent="tests.agents.example.agent:ExampleAgent",
    kinds={"example.stamp": "tests.agents.example.kinds"},
    modes=(("example.*", "auto", "the example's stamps"),),
)
