"""spikeseq.train (see ARCHITECTURE.md)."""
