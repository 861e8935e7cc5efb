"""Transaction tracing: geth's tracers and Parity-style traces over py-evm re-execution.

`hooks` is the one place that reaches into py-evm (a computation class whose frames and opcode
steps report to a `Tracer`); `replay` re-executes a stored block, or a call, with it; each
tracer is a pure module that turns those reports into the JSON geth (or OpenEthereum) returns.
"""
