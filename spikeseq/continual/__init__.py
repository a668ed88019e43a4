"""spikeseq.continual (see ARCHITECTURE.md)."""
