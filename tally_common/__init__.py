"""Code both the node and the client SDK need, which neither may import from the other.

The layers (`lint-imports` and a test keep them; README "What is here"): `tally_common`
imports none of `node`, `client`, `bank`; `client` imports `tally_common` only; `node` imports
`tally_common` only; `bank` imports `client` and `tally_common`. Modules: `eip681`
(payment-request URIs and their QR codes).
"""
