"""spikeseq.graph (see ARCHITECTURE.md)."""
