"""Transaction tracing: geth's tracers and Parity-style traces over py-evm re-execution.

`node.chain.evm.tracing` is the computation whose frames and opcode steps report to the
`hooks.Session` a traced state carries, which hands them to a `Tracer`; `replay` re-executes a
stored block, or a call, with it; each tracer is a pure module that turns those reports into
the JSON geth (or OpenEthereum) returns.
"""
