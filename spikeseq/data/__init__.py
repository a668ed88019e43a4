"""spikeseq.data (see ARCHITECTURE.md)."""
