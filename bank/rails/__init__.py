"""Card rails: the interface the gateway pays through (`base.CardRail`) and its adapters
(`simulator.SimulatorRail`, for the card-processor simulator `tally bank card-simulator`)."""
