"""A real network's genesis: the network description institutions agree on (`description`),
the genesis and node list built from it (`build`), what a genesis grants and to whom
(`inspect`), and the refusal of genesis documents that fund or empower the public dev keys
(`devkeys`)."""
