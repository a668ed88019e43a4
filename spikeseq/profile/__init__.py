"""spikeseq.profile (see ARCHITECTURE.md)."""
